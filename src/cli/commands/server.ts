// `secretfs server`: runs the daemon in the foreground over a dev (in-memory) store, the SQLite
// store in the data directory, or a PostgreSQL store (SECRETFS_STORAGE or --storage-file),
// serving the filesystem (with --mountpoint) and the control API.

import { defaultSocketPath, parseAddress, socketCandidates } from '../../api/socket-path.js'
import type { Unlock } from '../../barrier/seal-config.js'
import { defaultDataDir } from '../../config/defaults.js'
import { Core } from '../../core/core.js'
import { DaemonError } from '../../daemon/daemon-error.js'
import { hardenProcess, runDaemon } from '../../daemon/daemon.js'
import { hasStore, openCore } from '../../daemon/open-core.js'
import { SecretfsError } from '../../errors.js'
import { foldRepeats, stderrLogger } from '../../log.js'
import { CliError } from '../cli-error.js'
import { storeLocation } from '../storage-input.js'
import { readUnlock, wipe } from '../unlock-input.js'

export interface ServerArgs {
  dev: boolean
  sealed: boolean
  mountpoint?: string
  data?: string
  address?: string
  passphraseFile?: string
  keyFile?: string
  storageFile?: string
  fuse?: string
}

/** The daemon's log: a failure that repeats (as during an outage of the store) is written once a window. */
const daemonLog = foldRepeats(stderrLogger)

export async function run(args: ServerArgs): Promise<void> {
  process.umask(0o077)
  const log = daemonLog
  const env = process.env
  try {
    hardenProcess()
    const mountpoint = args.mountpoint ?? env.SECRETFS_MOUNTPOINT
    const address = args.address ?? env.SECRETFS_ADDR
    const socketPath = address ? parseAddress(address) : defaultSocketPath()
    const core = args.dev ? await devCore(args) : await storeCore(args)
    const mode = args.dev
      ? 'dev mode: in-memory store, unsealed; everything is lost when it stops'
      : core.sealed
        ? 'sealed: unseal it with `secretfs unseal`'
        : 'store unsealed'
    const print = (line: string) => console.log(line)
    // The CLI looks for the socket where a daemon with default settings listens; elsewhere, it
    // must be told, as `vault server -dev` tells.
    const found = !address || socketCandidates().includes(socketPath)
    const fuseBinding = args.fuse ?? env.SECRETFS_FUSE ?? 'lowlevel'
    if (fuseBinding !== 'lowlevel' && fuseBinding !== 'fuse-native')
      throw new CliError(`--fuse takes lowlevel or fuse-native, not ${JSON.stringify(fuseBinding.slice(0, 40))}`)
    const code = await runDaemon({
      core,
      ...(mountpoint !== undefined && { mountpoint }),
      socketPath,
      log,
      mode,
      fuseBinding,
      print,
      hints: found ? [] : [`secretfs: to use the CLI, run: export SECRETFS_ADDR='${socketPath}'`],
    })
    process.exit(code)
  } catch (e) {
    if (e instanceof DaemonError || e instanceof SecretfsError || e instanceof CliError) {
      process.stderr.write(`secretfs server: ${e.message}\n${e instanceof CliError && e.hint ? e.hint + '\n' : ''}`)
      process.exit(e instanceof CliError ? e.exitCode : 1)
    }
    throw e
  }
}

function devCore(args: ServerArgs): Promise<Core> {
  if (
    args.data !== undefined ||
    args.storageFile !== undefined ||
    args.sealed ||
    args.passphraseFile !== undefined ||
    args.keyFile !== undefined
  )
    throw new DaemonError(
      '--dev keeps everything in memory, unsealed; it takes no --data, --storage-file, --sealed or unseal flags',
    )
  return Core.dev({ log: daemonLog })
}

async function storeCore(args: ServerArgs): Promise<Core> {
  const store = await storeLocation(
    args,
    defaultDataDir(),
    () => new DaemonError('name a data directory with --data DIR, or try secretfs with --dev'),
  )
  // Checked before anything is asked: a directory that is not ours (or a database that cannot be
  // reached) ends here, and a new store has its passphrase asked twice.
  const present = await hasStore(store)
  let unlock: Unlock | undefined
  if (args.sealed) {
    if (args.passphraseFile !== undefined || args.keyFile !== undefined)
      throw new DaemonError('--sealed starts without unsealing; it takes no --passphrase-file or --key-file')
  } else {
    if (args.passphraseFile === undefined && args.keyFile === undefined && !process.stdin.isTTY)
      throw new DaemonError(
        'there is no terminal to ask for the passphrase: give --passphrase-file FILE or --key-file FILE, ' +
          'or start with --sealed and run `secretfs unseal`',
      )
    unlock = await readUnlock(
      {
        ...(args.passphraseFile !== undefined && { passphraseFile: args.passphraseFile }),
        ...(args.keyFile !== undefined && { keyFile: args.keyFile }),
      },
      { askTwice: !present },
    )
  }
  try {
    return await openCore({ store, log: daemonLog, ...(unlock && { unlock }) })
  } finally {
    if (unlock) wipe(unlock)
  }
}
