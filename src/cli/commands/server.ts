// `secretfs server`: runs the daemon in the foreground over a dev (in-memory) or on-disk store.

import { DaemonError } from '../../daemon/daemon-error.js'
import { runDaemon } from '../../daemon/daemon.js'
import { openCore } from '../../daemon/open-core.js'
import { SecretfsError } from '../../errors.js'
import { stderrLogger } from '../../log.js'

export interface ServerArgs {
  dev: boolean
  mountpoint?: string
  data?: string
  passphraseFile?: string
  keyFile?: string
}

export async function run(args: ServerArgs): Promise<void> {
  process.umask(0o077)
  const log = stderrLogger
  try {
    if (!args.mountpoint) throw new DaemonError('name the directory to mount on with --mountpoint DIR')
    const core = await openCore({
      dev: args.dev,
      log,
      ...(args.data !== undefined && { data: args.data }),
      ...(args.passphraseFile !== undefined && { passphraseFile: args.passphraseFile }),
      ...(args.keyFile !== undefined && { keyFile: args.keyFile }),
    })
    const mode = args.dev
      ? 'dev mode: in-memory store, unsealed; everything is lost when it stops'
      : 'store unsealed'
    const code = await runDaemon({ core, mountpoint: args.mountpoint, log, mode, print: (line) => console.log(line) })
    process.exit(code)
  } catch (e) {
    if (e instanceof DaemonError || e instanceof SecretfsError) {
      process.stderr.write(`secretfs server: ${e.message}\n`)
      process.exit(1)
    }
    throw e
  }
}
