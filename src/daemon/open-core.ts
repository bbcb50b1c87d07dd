// Opens the core the daemon serves: an in-memory dev core, or the SQLite store in a data
// directory, unsealed with what the user gave (or left sealed until `secretfs unseal`).

import fs from 'node:fs/promises'
import type { BackendFactory } from '../backends/backend.js'
import type { Unlock } from '../barrier/seal-config.js'
import { storeFile } from '../config/defaults.js'
import { Core } from '../core/core.js'
import type { Logger } from '../log.js'
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
  const { log, backends, unlock } = options
  await fs.mkdir(options.data, { recursive: true, mode: 0o700 })
  const core = new Core({ storage: new SqliteStorage(storeFile(options.data)), log, ...(backends && { backends }) })
  try {
    if (!(await core.initialized())) {
      if (!unlock)
        throw new DaemonError(
          `there is no store in ${options.data} yet; create one with: secretfs init --data ${options.data}`,
        )
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
