// Opens the core the daemon serves: the SQLite store in a data directory that must be ours alone,
// unsealed with what the user gave (or left sealed until `secretfs unseal`). Nothing is created
// when there is nothing to create the store with.

import fs from 'node:fs/promises'
import type { BackendFactory } from '../backends/backend.js'
import type { Unlock } from '../barrier/seal-config.js'
import { storeFile } from '../config/defaults.js'
import { Core } from '../core/core.js'
import type { Logger } from '../log.js'
import { NotPrivate, ensurePrivateDir, openPrivateDir } from '../os/private-path.js'
import { SqliteStorage } from '../storage/sqlite-storage.js'
import { DaemonError } from './daemon-error.js'

export interface StoreOptions {
  data: string
  /** Unseals with this (and initialises a new store with it); absent: start sealed. */
  unlock?: Unlock
  log: Logger
  backends?: Record<string, BackendFactory>
}

export async function openCore(options: StoreOptions): Promise<Core> {
  const { data, log, backends, unlock } = options
  if (!unlock) {
    if (!(await hasStore(data))) throw noStore(data)
  } else await ensureDataDir(data)
  const core = new Core({ storage: new SqliteStorage(storeFile(data)), log, ...(backends && { backends }) })
  try {
    if (!(await core.initialized())) {
      if (!unlock) throw noStore(data)
      await core.initialize(unlock)
      log.info('initialised a new store')
    }
    if (unlock) await core.unseal(unlock)
  } catch (e) {
    await core.close()
    throw e
  }
  return core
}

/**
 * Whether the data directory holds a store file, creating nothing; a directory that is there
 * must be ours alone.
 */
export async function hasStore(data: string): Promise<boolean> {
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

const noStore = (data: string) =>
  new DaemonError(`there is no store in ${data} yet; create one with: secretfs init --data ${data}`)
