// The aws backend (Vault's AWS secrets engine): config/root and config/lease, roles/NAME, and
// creds/NAME and sts/NAME, which make AWS credentials on each read, and current/NAME/, each role's
// credential of the moment (path-current.ts). IAM users are revoked with their lease; STS
// credentials expire by themselves.

import { invalid, SecretfsError, unsupported, upstream } from '../../errors.js'
import type { BackendContext, BackendFactory, EntryInfo, Lease, ReadResult } from '../backend.js'
import { PathBackend } from '../framework/path-backend.js'
import { DEFAULT_TIMEOUTS, type AwsTimeouts } from './client.js'
import { deleteIamUser } from './iam-user.js'
import { configLeasePath, readLeaseConfig } from './path-config-lease.js'
import { configRootPath } from './path-config-root.js'
import { credsPath } from './path-creds.js'
import { CurrentCredentials } from './path-current.js'
import { rolesPath } from './path-roles.js'
import { AwsState } from './state.js'
import { deleteWal, listWal } from '../framework/wal.js'

export interface AwsBackendOptions {
  /** Bounds on AWS calls, in milliseconds (tests shorten them). */
  timeouts?: Partial<AwsTimeouts>
}

export class AwsBackend extends PathBackend {
  readonly #state: AwsState
  readonly #current: CurrentCredentials

  constructor(ctx: BackendContext, options: AwsBackendOptions = {}) {
    const state = new AwsState(ctx.storage, { ...DEFAULT_TIMEOUTS, ...options.timeouts })
    super(
      [
        configRootPath(state),
        configLeasePath(state),
        rolesPath(state),
        credsPath(state, 'creds'),
        credsPath(state, 'sts'),
      ],
      ctx.maxValueSize,
    )
    this.#state = state
    this.#current = new CurrentCredentials(state, ctx.leases)
  }

  // current/ is a tree of its own (current/NAME/FORM), beside the declared paths.

  override async stat(path: string): Promise<EntryInfo | undefined> {
    return CurrentCredentials.owns(path) ? this.#current.stat(path) : super.stat(path)
  }

  override async read(path: string): Promise<ReadResult> {
    return CurrentCredentials.owns(path) ? this.#current.read(path) : super.read(path)
  }

  override async list(path: string): Promise<string[]> {
    if (CurrentCredentials.owns(path)) return this.#current.list(path)
    const names = await super.list(path)
    return path === '' ? [...names, 'current/'].sort() : names
  }

  override async delete(path: string): Promise<void> {
    return CurrentCredentials.owns(path) ? this.#current.revoke(path) : super.delete(path)
  }

  async rmdir(path: string): Promise<void> {
    if (!CurrentCredentials.owns(path)) throw unsupported('only current/NAME can be removed, which revokes it')
    await this.#current.revoke(path)
  }

  async revoke(lease: Lease): Promise<void> {
    const { kind, username } = lease.data
    // STS credentials cannot be revoked: they live out their TTL.
    if (kind !== 'sts') {
      if (kind !== 'iam_user' || typeof username !== 'string')
        throw invalid('the lease names neither an IAM user nor STS credentials')
      await deleteIamUser(await this.#state.clients(), username)
    }
    this.#current.dropped(lease)
  }

  close(): void {
    this.#current.close()
    this.#state.configChanged()
  }

  leaseEnded(lease: Lease): void {
    this.#current.dropped(lease)
  }

  changedElsewhere(path: string): void {
    if (path === '' || path.startsWith('config/')) this.#state.configChanged()
  }

  async renew(lease: Lease, ttl: number): Promise<number> {
    if (lease.data.kind !== 'iam_user') throw unsupported('STS credentials cannot be renewed: read new ones')
    // As Vault: an IAM user's lease renews to config/lease's lease at most.
    const max = (await readLeaseConfig(this.#state.storage))?.data.lease ?? 0
    return max > 0 ? Math.min(ttl, max) : ttl
  }

  /** Deletes every IAM user a write-ahead record names (and its keys, policies and groups), then the record. */
  async recover(options: { before?: Date } = {}): Promise<void> {
    const records = await listWal<{ username: string }>(this.#state.storage, options.before)
    if (records.length === 0) return
    const aws = await this.#state.clients()
    let failed = 0
    let first: unknown
    for (const r of records) {
      try {
        await deleteIamUser(aws, r.record.username)
        await deleteWal(this.#state.storage, r.id)
      } catch (e) {
        failed++
        first ??= e
      }
    }
    if (failed > 0)
      throw upstream(
        `${failed} of ${records.length} half-made IAM users could not be deleted; the next unseal tries again (${
          first instanceof SecretfsError ? first.message : 'an internal error'
        })`,
      )
  }
}

export const makeAwsBackend =
  (options: AwsBackendOptions = {}): BackendFactory =>
  (ctx) =>
    new AwsBackend(ctx, options)

export const awsBackend: BackendFactory = makeAwsBackend()
