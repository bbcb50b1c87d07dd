// Opens the core the daemon serves: an in-memory dev core, or the SQLite store in a data
// directory, initialised on first use and unsealed with a passphrase file or a key file.

import fs from 'node:fs/promises'
import path from 'node:path'
import type { BackendFactory } from '../backends/backend.js'
import type { Unlock } from '../barrier/seal-config.js'
import { Core } from '../core/core.js'
import type { Logger } from '../log.js'
import { SqliteStorage } from '../storage/sqlite-storage.js'
import { DaemonError } from './daemon-error.js'

export const STORE_FILE = 'secretfs.db'

export interface StoreOptions {
  dev?: boolean
  data?: string
  passphraseFile?: string
  keyFile?: string
  log: Logger
  backends?: Record<string, BackendFactory>
}

export async function openCore(options: StoreOptions): Promise<Core> {
  const { log, backends } = options
  if (options.dev) {
    if (options.data) throw new DaemonError('--dev keeps everything in memory; it takes no --data')
    return Core.dev({ log, ...(backends && { backends }) })
  }
  if (!options.data) throw new DaemonError('name a data directory with --data DIR, or try secretfs with --dev')
  if (!options.passphraseFile === !options.keyFile)
    throw new DaemonError('unseal the store with one of --passphrase-file FILE or --key-file FILE')
  const unlock = await readUnlock(options)
  try {
    await fs.mkdir(options.data, { recursive: true, mode: 0o700 })
    const core = new Core({ storage: new SqliteStorage(path.join(options.data, STORE_FILE)), log, ...(backends && { backends }) })
    try {
      if (!(await core.initialized())) {
        await core.initialize(unlock)
        log.info('initialised a new store')
      }
      await core.unseal(unlock)
    } catch (e) {
      await core.close()
      throw e
    }
    return core
  } finally {
    if (unlock.kind === 'passphrase') unlock.passphrase.fill(0)
    else unlock.key.fill(0)
  }
}

async function readUnlock(options: StoreOptions): Promise<Unlock> {
  const file = (options.passphraseFile ?? options.keyFile)!
  let bytes: Buffer
  try {
    bytes = await fs.readFile(file)
  } catch (e) {
    throw new DaemonError(`cannot read ${options.passphraseFile ? 'the passphrase file' : 'the key file'} (${(e as NodeJS.ErrnoException).code})`)
  }
  if (options.keyFile) return { kind: 'key-file', key: bytes }
  // A passphrase file ends with one line break, as `echo` writes it; that is not part of it.
  let end = bytes.length
  if (bytes[end - 1] === 0x0a) end--
  if (bytes[end - 1] === 0x0d) end--
  const passphrase = Buffer.from(bytes.subarray(0, end))
  bytes.fill(0)
  return { kind: 'passphrase', passphrase }
}
