// Which store a command opens: the SQLite file in the data directory (the default), or the
// PostgreSQL database whose URL is in $SECRETFS_STORAGE or in the file --storage-file names. The
// URL may hold a password, so it is taken only from the environment or a file of ours that no one
// else can read, never from the command line (where `ps` shows it), and no message repeats it.

import type { StoreLocation } from '../daemon/open-core.js'
import { CliError, UsageError } from './cli-error.js'

const URL_SCHEME = /^postgres(ql)?:\/\//i

/** The commands that open a store, whose arguments must never carry a connection URL. */
const STORE_COMMANDS = new Set(['server', 'init', 'migrate'])

/** A usage error when a store command's argument holds a PostgreSQL URL (said without quoting it). */
export function refuseUrlArguments(argv: readonly string[]): void {
  if (!STORE_COMMANDS.has(argv[0] ?? '')) return
  if (!argv.some((a) => /postgres(ql)?:\/\//i.test(a))) return
  throw new UsageError(
    'a PostgreSQL URL is never taken on the command line, where other users see it (ps)',
    'Put it in SECRETFS_STORAGE, or in a file of yours (chmod 600) named with --storage-file FILE.',
  )
}

/** The PostgreSQL URL chosen, from --storage-file (first) or $SECRETFS_STORAGE; undefined: SQLite. */
export async function readStorageUrl(
  storageFile: string | undefined,
  env: Record<string, string | undefined> = process.env,
): Promise<string | undefined> {
  if (storageFile !== undefined) {
    // Loaded here: refuseUrlArguments runs before every command, and needs none of this.
    const { readPrivateFile } = await import('./unlock-input.js')
    const { wipe } = await import('./secure-bytes.js')
    const bytes = await readPrivateFile(storageFile, 'storage file')
    const url = bytes.toString('utf8').trim()
    wipe(bytes)
    if (!URL_SCHEME.test(url))
      throw new CliError(
        `the storage file ${storageFile} does not hold a postgres:// or postgresql:// URL (it is not shown: it may hold a password)`,
      )
    return url
  }
  const url = env.SECRETFS_STORAGE?.trim()
  if (!url) return undefined
  if (!URL_SCHEME.test(url))
    throw new CliError(
      'SECRETFS_STORAGE does not hold a postgres:// or postgresql:// URL (it is not shown: it may hold a password)',
      'Unset it to use the SQLite store in the data directory.',
    )
  return url
}

/**
 * Where a command's store is: PostgreSQL when a URL is chosen, else SQLite in --data or
 * `defaultData`; `noData` is the error when there is neither.
 */
export async function storeLocation(
  flags: { storageFile?: string | undefined; data?: string | undefined },
  defaultData: string | undefined,
  noData: () => Error,
): Promise<StoreLocation> {
  const url = await readStorageUrl(flags.storageFile)
  if (url !== undefined) {
    if (flags.data !== undefined)
      throw new UsageError(
        '--data names the SQLite store, and a PostgreSQL store is chosen (SECRETFS_STORAGE or --storage-file)',
        'Leave out --data, or unset SECRETFS_STORAGE to use the SQLite store.',
      )
    return { kind: 'postgres', url }
  }
  const data = flags.data ?? defaultData
  if (!data) throw noData()
  return { kind: 'sqlite', data }
}
