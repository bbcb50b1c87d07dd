// `secretfs init [--data DIR] [--passphrase-file FILE | --key-file FILE]`: creates a store in the
// data directory, directly (no daemon). The directory must be ours alone (a missing one is created
// 0700). An existing store is never overwritten.

import { open, rm } from 'node:fs/promises'
import { defaultDataDir, storeFile } from '../../config/defaults.js'
import { CliError, UsageError } from '../cli-error.js'
import { print } from '../output.js'
import { readUnlock, wipe } from '../unlock-input.js'

export interface InitArgs {
  data?: string
  passphraseFile?: string
  keyFile?: string
}

export async function run(args: InitArgs): Promise<void> {
  const dir = args.data ?? defaultDataDir()
  if (!dir) throw new UsageError('there is no home directory to keep the store in', 'Name one with --data DIR.')
  const file = storeFile(dir)
  // Loaded here, not at the top: the store's native modules are for this command only.
  const { ensureDataDir, hasStore } = await import('../../daemon/open-core.js')
  // Before anything is asked: another user's directory, or an existing store, ends here.
  if (await hasStore(dir)) throw new CliError(`a store already exists at ${file}; it is never overwritten`)
  const unlock = await readUnlock(
    {
      ...(args.passphraseFile !== undefined && { passphraseFile: args.passphraseFile }),
      ...(args.keyFile !== undefined && { keyFile: args.keyFile }),
    },
    { askTwice: true, createKeyFile: true },
  )
  try {
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
  } finally {
    wipe(unlock)
  }
  const how =
    args.keyFile !== undefined
      ? `--key-file ${args.keyFile}`
      : '--passphrase-file FILE (or type the passphrase when asked)'
  print(
    `Success! Created a store in ${dir}.\n` +
      `Start the daemon on it with: secretfs server --data ${dir} --mountpoint DIR ${how}\n`,
  )
}

async function removeStore(file: string): Promise<void> {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) await rm(f, { force: true })
}
