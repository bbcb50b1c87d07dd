// `secretfs init [--data DIR] [--passphrase-file FILE | --key-file FILE]`: creates a store,
// directly (no daemon): in the data directory, which must be ours alone (a missing one is created
// 0700), or in the PostgreSQL database SECRETFS_STORAGE or --storage-file names. An existing store
// is never overwritten.

import { open, rm } from 'node:fs/promises'
import type { Unlock } from '../../barrier/seal-config.js'
import { defaultDataDir, storeFile } from '../../config/defaults.js'
import { CliError, UsageError } from '../cli-error.js'
import { print } from '../output.js'
import { storeLocation } from '../storage-input.js'
import { readUnlock, wipe } from '../unlock-input.js'

export interface InitArgs {
  data?: string
  passphraseFile?: string
  keyFile?: string
  storageFile?: string
}

export async function run(args: InitArgs): Promise<void> {
  const store = await storeLocation(
    args,
    defaultDataDir(),
    () => new UsageError('there is no home directory to keep the store in', 'Name one with --data DIR.'),
  )
  // Loaded here, not at the top: the store's native modules are for this command only.
  const { hasStore } = await import('../../daemon/open-core.js')
  const exists = () =>
    new CliError(
      store.kind === 'sqlite'
        ? `a store already exists at ${storeFile(store.data)}; it is never overwritten`
        : 'a store already exists in the PostgreSQL database; it is never overwritten',
    )
  // Before anything is asked: another user's directory, an unreachable database, or an existing
  // store, ends here.
  if (await hasStore(store)) throw exists()
  const unlock = await readUnlock(
    {
      ...(args.passphraseFile !== undefined && { passphraseFile: args.passphraseFile }),
      ...(args.keyFile !== undefined && { keyFile: args.keyFile }),
    },
    { askTwice: true, createKeyFile: true },
  )
  try {
    if (store.kind === 'sqlite') await initSqlite(store.data, unlock)
    else await initPostgres(store.url, unlock, exists)
  } finally {
    wipe(unlock)
  }
  const how =
    args.keyFile !== undefined
      ? `--key-file ${args.keyFile}`
      : '--passphrase-file FILE (or type the passphrase when asked)'
  print(
    store.kind === 'sqlite'
      ? `Success! Created a store in ${store.data}.\n` +
          `Start the daemon on it with: secretfs server --data ${store.data} --mountpoint DIR ${how}\n`
      : 'Success! Created a store in the PostgreSQL database.\n' +
          `Start each daemon on it with: secretfs server --mountpoint DIR ${how}\n` +
          '(with the same SECRETFS_STORAGE or --storage-file)\n',
  )
}

async function initSqlite(dir: string, unlock: Unlock): Promise<void> {
  const file = storeFile(dir)
  const { ensureDataDir } = await import('../../daemon/open-core.js')
  await ensureDataDir(dir)
  const { Core } = await import('../../core/core.js')
  const { SqliteStorage } = await import('../../storage/sqlite-storage.js')
  // Claimed with O_EXCL, so that of two inits at once one fails, and a failure below removes
  // only a file this command created. SQLite takes an empty file as a new database.
  try {
    await (await open(file, 'wx', 0o600)).close()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw new CliError(`a store already exists at ${file}; it is never overwritten`)
    throw new CliError(`cannot create ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  let core: InstanceType<typeof Core> | undefined
  try {
    core = new Core({ storage: new SqliteStorage(file) })
    await core.initialize(unlock)
    await core.close()
  } catch (e) {
    await core?.close().catch(() => {})
    await removeStore(file)
    throw e
  }
}

/** Initialises the database's store under its claim, so that of two inits (or servers) one does. */
async function initPostgres(url: string, unlock: Unlock, exists: () => CliError): Promise<void> {
  const { Core } = await import('../../core/core.js')
  const { PostgresStorage } = await import('../../storage/postgres-storage.js')
  const storage = new PostgresStorage({ url })
  const core = new Core({ storage })
  try {
    await storage.exclusively(async () => {
      if ((await storage.list('', 1)).length > 0) throw exists()
      await core.initialize(unlock)
    })
  } finally {
    await core.close()
  }
}

async function removeStore(file: string): Promise<void> {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) await rm(f, { force: true })
}
