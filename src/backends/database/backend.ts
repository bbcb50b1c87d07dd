// The database backend (Vault's database secrets engine with its PostgreSQL plugin): config/NAME
// says how to reach a database; roles/NAME and creds/NAME make a user with a lease on each read;
// static-roles/NAME, static-creds/NAME and rotate-role/NAME rotate an existing user's password;
// rotate-root/NAME rotates secretfs's own. Users are dropped when their lease ends, and so when the
// mount is unmounted.

import { invalid, SecretfsError, upstream } from '../../errors.js'
import type { BackendContext, BackendFactory, Lease } from '../backend.js'
import { PathBackend } from '../framework/path-backend.js'
import { deleteWal, listWal } from '../framework/wal.js'
import { dropUser, renewUser, type DbUserLeaseData, type DbUserWal } from './dynamic-user.js'
import { configPath } from './path-config.js'
import { credsPath } from './path-creds.js'
import { readRole, rolesPath } from './path-roles.js'
import { recoverRootRotation, rotateRootPath, type RootRotationWal } from './path-rotate-root.js'
import { staticPaths } from './path-static-roles.js'
import { DEFAULT_PG_TIMEOUTS, type PgTimeouts } from './postgres.js'
import { DatabaseState } from './state.js'
import { StaticRotations, type StaticRotationWal } from './static-roles.js'

export interface DatabaseBackendOptions {
  /** Bounds on PostgreSQL calls, in milliseconds (tests shorten them). */
  timeouts?: Partial<PgTimeouts>
}

type Wal = DbUserWal | StaticRotationWal | RootRotationWal

export class DatabaseBackend extends PathBackend {
  readonly #state: DatabaseState
  readonly #rotations: StaticRotations

  constructor(ctx: BackendContext, options: DatabaseBackendOptions = {}) {
    const state = new DatabaseState(ctx.storage, { ...DEFAULT_PG_TIMEOUTS, ...options.timeouts })
    const rotations = new StaticRotations(state)
    super(
      [
        configPath(state),
        rolesPath(state),
        credsPath(state, ctx.leases),
        rotateRootPath(state),
        ...staticPaths(state, rotations),
      ],
      ctx.maxValueSize,
    )
    this.#state = state
    this.#rotations = rotations
  }

  async revoke(lease: Lease): Promise<void> {
    const data = userOf(lease)
    // The role's statements as they are now; those it had at issue if it was deleted since.
    const role = await readRole(this.#state.storage, data.role)
    const statements =
      role?.data.db_name === data.db_name ? role.data.revocation_statements : data.revocation_statements
    await dropUser(await this.#state.database(data.db_name), data.username, statements)
  }

  async renew(lease: Lease, ttl: number): Promise<number> {
    const data = userOf(lease)
    const role = await readRole(this.#state.storage, data.role)
    const statements = role?.data.db_name === data.db_name ? role.data.renew_statements : []
    const expires = new Date(Math.min(Date.now() + ttl * 1000, lease.maxExpires.getTime()))
    await renewUser(await this.#state.database(data.db_name), data.username, statements, expires)
    return ttl
  }

  /** Drops users a read left half made, and finishes rotations a crash interrupted. */
  async recover(options: { before?: Date } = {}): Promise<void> {
    // Root passwords first: the other records need the connection they make.
    const records = (await listWal<Wal>(this.#state.storage, options.before)).sort(
      (a, b) => Number(b.record.kind === 'root') - Number(a.record.kind === 'root'),
    )
    let failed = 0
    let first: unknown
    for (const { id, record } of records) {
      try {
        if (record.kind === 'creds') await dropUser(await this.#state.database(record.db_name), record.username, [])
        else if (record.kind === 'root') await recoverRootRotation(this.#state, record)
        // The password set may or may not be the stored one: set a new one, which is stored.
        else if (record.kind === 'static') await this.#rotations.rotate(record.role).catch(ignoreNotFound)
        await deleteWal(this.#state.storage, id)
      } catch (e) {
        failed++
        first ??= e
      }
    }
    if (failed > 0)
      throw upstream(
        `${failed} of ${records.length} interrupted database changes could not be finished; the next unseal tries again (${
          first instanceof SecretfsError ? first.message : 'an internal error'
        })`,
      )
  }

  start(): void {
    void this.#rotations.start().catch(() => {})
  }

  stop(): void {
    this.#rotations.stop()
  }

  changedElsewhere(path: string): void {
    // A configuration another daemon wrote (rotate-root): its pool here is made anew. After changes
    // not known one by one, those of the configurations that changed (a store that cannot be read
    // now keeps them: each use reads its configuration, and makes its pool anew if it changed).
    if (path === '') void this.#state.refreshPools().catch(() => {})
    else if (path.startsWith('config/')) this.#state.configChanged(path.slice('config/'.length))
  }

  close(): void {
    this.#rotations.close()
    this.#state.dropPools()
  }
}

function userOf(lease: Lease): DbUserLeaseData {
  const { kind, username, db_name, role } = lease.data
  if (kind !== 'creds' || typeof username !== 'string' || typeof db_name !== 'string' || typeof role !== 'string')
    throw invalid('the lease does not name a database user')
  const revocation = lease.data.revocation_statements
  return {
    kind,
    username,
    db_name,
    role,
    revocation_statements: Array.isArray(revocation) ? revocation.filter((s) => typeof s === 'string') : [],
  }
}

function ignoreNotFound(e: unknown): void {
  if (!(e instanceof SecretfsError && e.kind === 'not-found')) throw e
}

export const makeDatabaseBackend =
  (options: DatabaseBackendOptions = {}): BackendFactory =>
  (ctx) =>
    new DatabaseBackend(ctx, options)

export const databaseBackend: BackendFactory = makeDatabaseBackend()
