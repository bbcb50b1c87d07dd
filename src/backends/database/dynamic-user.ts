// A dynamic role's users: made for one read of creds/NAME by the role's creation statements in one
// transaction, renewed by its renew statements, and dropped by its revocation statements (or the
// PostgreSQL plugin's default, which revokes the user's privileges and drops it). Before a user is
// made, a write-ahead record names it, so that a daemon that dies half-way leaves nothing that
// recover() cannot drop. Revoking also ends the user's open sessions.

import pg from 'pg'
import type { StorageView } from '../../barrier/barrier.js'
import { randomAlnum } from '../../crypto/random-text.js'
import { upstream } from '../../errors.js'
import type { ReadResult } from '../backend.js'
import { fieldsValue } from '../framework/present.js'
import { deleteWal, putWal } from '../framework/wal.js'
import type { Database } from './postgres.js'
import type { DbRole } from './path-roles.js'
import { DEFAULT_RENEW, expirationText, render } from './statements.js'

/** What revoking or renewing a user needs, stored with its lease (never its password). */
// A type, not an interface: it must fit LeaseData's index signature.
export type DbUserLeaseData = {
  kind: 'creds'
  /** The roles/NAME that made it. */
  role: string
  /** The config/NAME it lives in. */
  db_name: string
  username: string
  /** The role's revocation statements when it was made: used if the role is deleted meanwhile. */
  revocation_statements: string[]
}

/** The write-ahead record of a user being made. */
export type DbUserWal = { kind: 'creds'; db_name: string; username: string }

/** PostgreSQL's error code for a role (or other object) that does not exist. */
const UNDEFINED_OBJECT = '42704'

/** Generated passwords: 32 letters and digits, about 190 bits. */
export const PASSWORD_LENGTH = 32

export const newPassword = () => randomAlnum(PASSWORD_LENGTH)

/**
 * Vault's PostgreSQL user name, `v-<display name>-<role>-<random>-<unix time>` with each name cut
 * to 8 characters, within PostgreSQL's 63: letters, digits and the role name's `_ . @ -`, so it
 * is safe inside a quoted identifier.
 */
export function dbUserName(roleName: string, now = Date.now()): string {
  return `v-secretfs-${roleName.slice(0, 8)}-${randomAlnum(20)}-${Math.floor(now / 1000)}`.slice(0, 63)
}

/** Makes a user for `role` that expires at `expires`, and returns its credentials with a lease. */
export async function createUser(
  db: Database,
  storage: StorageView,
  roleName: string,
  role: DbRole,
  expires: Date,
): Promise<ReadResult> {
  const username = dbUserName(roleName)
  const password = newPassword()
  const hide = [username, password]
  const values = { name: username, password, expiration: expirationText(expires) }
  const walId = await putWal(storage, { kind: 'creds', db_name: role.db_name, username } satisfies DbUserWal)
  try {
    await db.transaction('running creation_statements', render(role.creation_statements, values), hide)
  } catch (e) {
    try {
      if (role.rollback_statements.length > 0)
        await db.transaction('running rollback_statements', render(role.rollback_statements, values), hide)
      // Whatever the statements did outside their transaction, no user is left behind.
      await dropUser(db, username, [])
      await deleteWal(storage, walId)
    } catch {
      // The record stays: the next unseal's recover() drops the user.
    }
    throw e
  }
  const now = new Date()
  const data: DbUserLeaseData = {
    kind: 'creds',
    role: roleName,
    db_name: role.db_name,
    username,
    revocation_statements: role.revocation_statements,
  }
  return {
    value: fieldsValue({ username, password }),
    created: now,
    modified: now,
    generated: true,
    readOnly: true,
    credential: 'postgresql',
    lease: { ttl: role.default_ttl, maxTtl: role.max_ttl, renewable: true, data },
    leased: () => deleteWal(storage, walId),
  }
}

/** Extends the user's login to `expires` with `statements` (the default: VALID UNTIL). */
export async function renewUser(db: Database, username: string, statements: string[], expires: Date): Promise<void> {
  const sql = render(statements.length > 0 ? statements : DEFAULT_RENEW, {
    name: username,
    expiration: expirationText(expires),
  })
  const exists = await db.run('renewing the user', [username], (client) => roleExists(client, username))
  if (!exists) throw upstream('PostgreSQL: the user of this lease no longer exists; it cannot be renewed')
  await db.transaction('renewing the user', sql, [username])
}

/**
 * The objects of this database (and the databases) on whose privileges `username` was granted,
 * each as REVOKE names it, quoted by PostgreSQL itself: tables and views (a column's privilege
 * too: REVOKE on the table takes it), sequences, routines, schemas and databases. PostgreSQL
 * records each grant in pg_shdepend, indexed by role: no catalog is scanned.
 */
const GRANTED_OBJECTS = `
  SELECT DISTINCT obj FROM (
    SELECT CASE d.classid
      WHEN 'pg_class'::regclass THEN
        CASE WHEN c.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || d.objid::regclass::text
      WHEN 'pg_proc'::regclass THEN 'ROUTINE ' || d.objid::regprocedure::text
      WHEN 'pg_namespace'::regclass THEN 'SCHEMA ' || quote_ident(n.nspname)
      WHEN 'pg_database'::regclass THEN 'DATABASE ' || quote_ident(db.datname)
    END AS obj
    FROM pg_shdepend d
    LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
    LEFT JOIN pg_namespace n ON d.classid = 'pg_namespace'::regclass AND n.oid = d.objid
    LEFT JOIN pg_database db ON d.classid = 'pg_database'::regclass AND db.oid = d.objid
    WHERE d.refclassid = 'pg_authid'::regclass AND d.deptype = 'a'
      AND d.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)
      AND d.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
  ) granted WHERE obj IS NOT NULL ORDER BY obj`

/**
 * Stops the user logging in, ends its open sessions, then runs `statements` (the default: revoke
 * every privilege it was granted, and drop it). A user already gone is success.
 */
export async function dropUser(db: Database, username: string, statements: string[]): Promise<void> {
  const hide = [username]
  const sql = await db.run('revoking the user', hide, async (client) => {
    const user = client.escapeIdentifier(username)
    try {
      await client.query(`ALTER ROLE ${user} NOLOGIN`)
    } catch (e) {
      if (e instanceof pg.DatabaseError && e.code === UNDEFINED_OBJECT) return undefined
      throw e
    }
    // Waits up to 5 s for each session to end; refused unless secretfs's user may signal them.
    await client.query(
      'SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
      [username],
    )
    if (statements.length > 0) return render(statements, { name: username })
    const granted = await client.query<{ obj: string }>(GRANTED_OBJECTS, [username])
    return [
      ...granted.rows.map(({ obj }) => `REVOKE ALL PRIVILEGES ON ${obj} FROM ${user}`),
      `DROP ROLE IF EXISTS ${user}`,
    ]
  })
  if (sql) await db.transaction('revoking the user', sql, hide)
}

async function roleExists(client: pg.PoolClient, username: string): Promise<boolean> {
  return ((await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username])).rowCount ?? 0) > 0
}
