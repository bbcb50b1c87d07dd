// Opens the core the daemon serves: the SQLite store in a data directory that must be ours alone,
// or a PostgreSQL database several daemons share, unsealed with what the user gave (or left
// sealed until `secretfs unseal`). Nothing is created when there is nothing to create the store
// with, and of daemons starting together on an empty database one creates the store.

import fs from 'node:fs/promises'
import type { BackendFactory } from '../backends/backend.js'
import type { Unlock } from '../barrier/seal-config.js'
import { storeFile } from '../config/defaults.js'
import { Core } from '../core/core.js'
import type { Logger } from '../log.js'
import { NotPrivate, ensurePrivateDir, openPrivateDir } from '../os/private-path.js'
import { PostgresStorage } from '../storage/postgres-storage.js'
import { SqliteStorage } from '../storage/sqlite-storage.js'
import type { Storage } from '../storage/storage.js'
import { DaemonError } from './daemon-error.js'

/** Where the store is: the SQLite file of a data directory, or a PostgreSQL database (its URL). */
export type StoreLocation = { kind: 'sqlite'; data: string } | { kind: 'postgres'; url: string }

/** The store's name in messages (never the URL, which may hold a password). */
export const describeStore = (store: StoreLocation): string =>
  store.kind === 'sqlite' ? `the store in ${store.data}` : 'the PostgreSQL store'

/** Opens the storage of `store` (a SQLite data directory must already be checked). */
export function openStorage(store: StoreLocation): Storage {
  return store.kind === 'sqlite' ? new SqliteStorage(storeFile(store.data)) : new PostgresStorage({ url: store.url })
}

/**
 * Runs `fn` as the only process making or filling `storage`: PostgreSQL's claim on a shared
 * store; a SQLite file is ours alone already.
 */
export function exclusively<T>(storage: Storage, fn: () => Promise<T>): Promise<T> {
  return storage instanceof PostgresStorage ? storage.exclusively(fn) : fn()
}

export interface StoreOptions {
  store: StoreLocation
  /** Unseals with this (and initialises a new store with it); absent: start sealed. */
  unlock?: Unlock
  log: Logger
  backends?: Record<string, BackendFactory>
}

export async function openCore(options: StoreOptions): Promise<Core> {
  const { store, log, backends, unlock } = options
  if (store.kind === 'sqlite') {
    if (!unlock) {
      if (!(await hasStore(store))) throw noStore(store)
    } else await ensureDataDir(store.data)
  }
  const storage = openStorage(store)
  const core = new Core({ storage, log, ...(backends && { backends }) })
  try {
    await exclusively(storage, async () => {
      if (await core.initialized()) return
      if (!unlock) throw noStore(store)
      await core.initialize(unlock)
      log.info('initialised a new store')
    })
    if (unlock) await core.unseal(unlock)
  } catch (e) {
    await core.close()
    throw e
  }
  return core
}

/**
 * Whether there is a store, creating nothing: a store file in the data directory (which, if it is
 * there, must be ours alone), or entries in the PostgreSQL database.
 */
export async function hasStore(store: StoreLocation): Promise<boolean> {
  if (store.kind === 'postgres') {
    const storage = openStorage(store)
    try {
      return (await storage.list('', 1)).length > 0
    } finally {
      await storage.close()
    }
  }
  const { data } = store
  let dir
  try {
    dir = await openPrivateDir(data)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw dataDirError(data, e)
  }
  await dir.close()
  try {
    await fs.lstat(storeFile(data))
    return true
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw e
  }
}

/** Creates the data directory (0700, durably) if it is missing; it must be ours alone. */
export async function ensureDataDir(data: string): Promise<void> {
  try {
    await ensurePrivateDir(data)
  } catch (e) {
    throw dataDirError(data, e)
  }
}

function dataDirError(data: string, e: unknown): unknown {
  if (!(e instanceof NotPrivate)) return e
  const fix =
    e.problem === 'mode'
      ? `make it yours alone: chmod 700 ${data}`
      : e.problem === 'owner'
        ? 'use a directory of your own (a missing one is created 0700)'
        : 'name a directory with --data DIR'
  // The same check as the control socket's: another user's directory could swap the store.
  return new DaemonError(`the data directory ${e.message}; ${fix}`)
}

const noStore = (store: StoreLocation) =>
  new DaemonError(
    store.kind === 'sqlite'
      ? `there is no store in ${store.data} yet; create one with: secretfs init --data ${store.data}`
      : 'there is no store in the PostgreSQL database yet; create one with: secretfs init ' +
          '(with the same SECRETFS_STORAGE or --storage-file)',
  )
