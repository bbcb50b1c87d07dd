// `secretfs migrate --to postgres | --from postgres`: copies a whole store between the SQLite file
// in the data directory and the PostgreSQL database SECRETFS_STORAGE or --storage-file names, as
// `vault operator migrate` does: every entry as it is stored (encrypted), so the copy unseals with
// the same passphrase or key file. The target must be empty, and is left as it was if the copy
// fails; the source is read as one snapshot (a SQLite store is ours alone while it is open).

import { open, rm } from 'node:fs/promises'
import { defaultDataDir, storeFile } from '../../config/defaults.js'
import type { StoreLocation } from '../../daemon/open-core.js'
import { isKind } from '../../errors.js'
import type { Storage, StorageOp } from '../../storage/storage.js'
import { CliError, UsageError } from '../cli-error.js'
import { print } from '../output.js'
import { readStorageUrl } from '../storage-input.js'

export interface MigrateArgs {
  to?: 'postgres' | 'sqlite'
  from?: 'postgres' | 'sqlite'
  data?: string
  storageFile?: string
}

/** A batch is written when it holds this many entries or bytes. */
const BATCH_ENTRIES = 256
const BATCH_BYTES = 4 << 20

export async function run(args: MigrateArgs): Promise<void> {
  if (args.to === undefined && args.from === undefined)
    throw new UsageError('migrate needs a direction: --to postgres or --from postgres')
  if (args.to !== undefined && args.to === args.from)
    throw new UsageError('--to and --from name the same kind of store')
  const toPostgres = args.to === 'postgres' || args.from === 'sqlite'
  const url = await readStorageUrl(args.storageFile)
  if (url === undefined)
    throw new UsageError(
      "migrate needs the PostgreSQL store's URL",
      'Put it in SECRETFS_STORAGE, or in a file of yours (chmod 600) named with --storage-file FILE.',
    )
  const data = args.data ?? defaultDataDir()
  if (!data) throw new UsageError('there is no home directory to keep the store in', 'Name one with --data DIR.')
  const sqlite: StoreLocation = { kind: 'sqlite', data }
  const postgres: StoreLocation = { kind: 'postgres', url }
  const [source, target] = toPostgres ? [sqlite, postgres] : [postgres, sqlite]

  const { describeStore, hasStore } = await import('../../daemon/open-core.js')
  if (!(await hasStore(source))) throw new CliError(`there is no store to copy: ${describeStore(source)} is empty`)
  const from = await openSource(source)
  try {
    const copied = await copyInto(target, from)
    print(
      `Success! Copied ${copied} entries from ${describeStore(source)} to ${describeStore(target)}.\n` +
        'It unseals with the same passphrase or key file.\n',
    )
  } finally {
    await from.close()
  }
}

async function openSource(source: StoreLocation): Promise<Storage> {
  const { describeStore, openStorage } = await import('../../daemon/open-core.js')
  try {
    return openStorage(source)
  } catch (e) {
    if (isKind(e, 'internal') && /in use/.test(e.message))
      throw new CliError(`${describeStore(source)} is in use by a running secretfs daemon; stop it, then migrate`)
    throw e
  }
}

/** Copies every entry of `from` into the empty store at `target`; the number copied. */
async function copyInto(target: StoreLocation, from: Storage): Promise<number> {
  const { describeStore, ensureDataDir, exclusively, openStorage } = await import('../../daemon/open-core.js')
  const refused = () =>
    new CliError(`${describeStore(target)} is not empty; migrate copies only into an empty store, and wrote nothing`)
  if (target.kind === 'sqlite') {
    await ensureDataDir(target.data)
    await claimStoreFile(storeFile(target.data), refused)
  }
  let to: Storage | undefined
  try {
    to = openStorage(target)
    const storage = to
    return await exclusively(storage, async () => {
      if ((await storage.list('', 1)).length > 0) throw refused()
      try {
        return await copyEntries(from, storage)
      } catch (e) {
        // Leave the target empty, as it was; a SQLite file made here goes below.
        if (target.kind === 'postgres') await storage.batch([{ op: 'delete-prefix', prefix: '' }]).catch(() => {})
        throw e
      }
    })
  } catch (e) {
    await to?.close().catch(() => {})
    to = undefined
    if (target.kind === 'sqlite') await removeStore(storeFile(target.data))
    throw e
  } finally {
    await to?.close()
  }
}

async function copyEntries(from: Storage, to: Storage): Promise<number> {
  let ops: StorageOp[] = []
  let bytes = 0
  let copied = 0
  for await (const [key, value] of from.entries()) {
    ops.push({ op: 'put', key, value })
    bytes += key.length + value.length
    if (ops.length >= BATCH_ENTRIES || bytes >= BATCH_BYTES) {
      await to.batch(ops)
      copied += ops.length
      ;[ops, bytes] = [[], 0]
    }
  }
  if (ops.length > 0) await to.batch(ops)
  return copied + ops.length
}

/** Creates the SQLite target's file, refusing one that is there (O_EXCL: of two copies, one wins). */
async function claimStoreFile(file: string, refused: () => CliError): Promise<void> {
  try {
    await (await open(file, 'wx', 0o600)).close()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw refused()
    throw new CliError(`cannot create ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

async function removeStore(file: string): Promise<void> {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) await rm(f, { force: true })
}
