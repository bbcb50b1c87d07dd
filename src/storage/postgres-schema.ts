// The PostgreSQL store's tables, made on first use and versioned. Two daemons starting at once on
// an empty database must not both create them: creation and the version check run in one
// transaction under an advisory lock. A store of a newer version than this code is refused.

import type pg from 'pg'
import { unsupported } from '../errors.js'

/** The layout this code reads and writes; a newer one in the database is refused. */
export const SCHEMA_VERSION = 1

/** Entries: the barrier's keys and values, opaque, ordered bytewise as SQLite orders them. */
export const ENTRIES = 'secretfs_entries'
/** One row: the schema's version and the change counter every write transaction bumps. */
export const META = 'secretfs_meta'
/** The LISTEN/NOTIFY channel on which each write transaction announces its keys. */
export const CHANNEL = 'secretfs_changes'

/** Advisory lock keys (two int4): 'sfs' and what the lock guards. */
const LOCK_SPACE = 0x736673
export const SCHEMA_LOCK = [LOCK_SPACE, 1] as const
/** Held while a store is initialised or filled by migrate: an empty store is claimed once. */
export const CLAIM_LOCK = [LOCK_SPACE, 2] as const
/** The space of the named locks (Storage.locked): 'sfl', and the lock's id. */
export const NAMED_LOCKS = 0x73666c

/** Creates the tables if they are missing, or checks the version of those there. */
export async function ensureSchema(client: pg.ClientBase): Promise<void> {
  await client.query('BEGIN')
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...SCHEMA_LOCK])
    const { rows } = await client.query<{ present: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS present`, [META])
    if (rows[0]!.present) {
      const meta = await client.query<{ schema_version: number }>(`SELECT schema_version FROM ${META}`)
      const version = meta.rows[0]?.schema_version
      if (version === undefined || version > SCHEMA_VERSION)
        throw unsupported(
          `the PostgreSQL store has schema version ${version ?? 'unknown'}, and this secretfs knows only ` +
            `version ${SCHEMA_VERSION} and older: use a newer secretfs`,
        )
    } else {
      await client.query(
        `CREATE TABLE ${ENTRIES} (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
         CREATE TABLE ${META} (
           one boolean PRIMARY KEY DEFAULT true CHECK (one),
           schema_version integer NOT NULL,
           changes bigint NOT NULL DEFAULT 0
         );
         INSERT INTO ${META} (schema_version) VALUES (${SCHEMA_VERSION});`,
      )
    }
    await client.query('COMMIT')
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {})
    throw e
  }
}
