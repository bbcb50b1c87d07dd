// The daemon's lifecycle: hardens the process before any secret enters it, starts its services
// over one core, runs until SIGINT or SIGTERM, then finishes in-flight writes, unmounts, zeroes the
// keys (core.close) and exits.

import type { Core } from '../core/core.js'
import type { FuseBinding, FuseBindingName } from '../fs/fuse-mount.js'
import { describe, type Logger } from '../log.js'
import { ADDON_PATH, loadNative, type SecretfsNative } from '../native/secretfs-native.js'
import { DaemonError } from './daemon-error.js'
import { loadFuse } from './fuse-library.js'
import { collectGarbage, enableMemoryHygiene } from './memory-hygiene.js'
import { serveControlApi } from './api-service.js'
import { serveFilesystem, type Service } from './filesystem-service.js'

export interface DaemonOptions {
  core: Core
  /** Where to mount the filesystem; without one, only the control API is served. */
  mountpoint?: string
  /** The control API's Unix socket. */
  socketPath: string
  log: Logger
  /** User-facing lines (stdout). */
  print: (line: string) => void
  /** How the store was opened, for the start-up message. */
  mode: string
  /** Lines to print once the services run, before the last start-up line. */
  hints?: string[]
  /** The FUSE binding, when already loaded; loaded (with its system checks) otherwise. */
  fuse?: FuseBinding
  /** Which binding to load (default: lowlevel). */
  fuseBinding?: FuseBindingName
}

export class Daemon {
  readonly #options: DaemonOptions
  readonly #services: Service[] = []
  #stopping: Promise<void> | undefined

  private constructor(options: DaemonOptions) {
    this.#options = options
  }

  /** Starts every service; if one fails, those already started are stopped again. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const daemon = new Daemon(options)
    try {
      await daemon.#startServices()
    } catch (e) {
      await daemon.#stopServices()
      throw e
    }
    return daemon
  }

  get services(): readonly Service[] {
    return this.#services
  }

  async #startServices(): Promise<void> {
    const { core, mountpoint, socketPath, log } = this.#options
    if (mountpoint !== undefined) {
      const fuse = this.#options.fuse ?? (await loadFuse(this.#options.fuseBinding))
      this.#services.push(await serveFilesystem(core, mountpoint, fuse, log))
    }
    // Started last, so stopped first: no API request arrives while the filesystem unmounts.
    this.#services.push(await serveControlApi(core, socketPath, log))
  }

  /** Stops the services (last started first), then seals and closes the core. Idempotent. */
  stop(): Promise<void> {
    return (this.#stopping ??= (async () => {
      await this.#stopServices()
      await this.#options.core.close()
      this.#options.log.info('stopped; keys zeroed')
    })())
  }

  async #stopServices(): Promise<void> {
    let failure: unknown
    for (const service of this.#services.splice(0).reverse()) {
      try {
        await service.stop()
      } catch (e) {
        this.#options.log.error(`stopping the ${service.name} failed`, e)
        failure ??= e
      }
    }
    if (failure) throw failure
  }
}

/**
 * Makes this process non-dumpable, as ssh-agent and gpg-agent do: no core file, and no ptrace or
 * /proc/PID/mem, environ or maps for the user's other processes, which could otherwise read every
 * key the daemon holds. Call it before the first secret is read; without it the daemon must not run.
 */
export function hardenProcess(): void {
  let native: SecretfsNative
  try {
    native = loadNative()
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0]
    throw new DaemonError(
      `cannot load the secretfs_native addon (${ADDON_PATH}: ${reason}), which keeps other processes ` +
        "out of the daemon's memory; build it with `npm ci` (it needs python3, make and g++), then start again",
    )
  }
  try {
    native.makeNonDumpable()
  } catch (e) {
    throw new DaemonError(`cannot keep other processes out of the daemon's memory: ${(e as Error).message}`)
  }
  if (native.dumpable()) throw new DaemonError('the daemon is still dumpable after PR_SET_DUMPABLE 0; not starting')
  // Memory that held a secret and was freed unzeroed (libfuse's read buffers, Node's socket reads).
  native.zeroFreedMemory()
}

/** Runs the daemon in the foreground until a signal stops it; resolves to the exit code. */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  const { log, print } = options
  process.umask(0o077)
  enableMemoryHygiene()
  // At once, so that the seal is answered only after: what requests held is dead by then.
  options.core.onChange((c) => {
    if (c.kind === 'sealed') collectGarbage()
  })
  let stopRequested!: () => void
  const signalled = new Promise<void>((resolve) => (stopRequested = resolve))
  const onSignal = (signal: NodeJS.Signals) => {
    log.info(`${signal} received: finishing writes, unmounting`)
    stopRequested()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  let daemon: Daemon | undefined
  // An uncaught error must not leave a dead mount behind.
  const onCrash = (error: unknown) => {
    log.error('uncaught error; unmounting and exiting', error)
    void (daemon?.stop() ?? Promise.resolve()).finally(() => process.exit(1))
  }
  process.on('uncaughtException', onCrash)
  process.on('unhandledRejection', onCrash)
  try {
    daemon = await Daemon.start(options)
    for (const s of daemon.services) print(`secretfs: ${s.name} ${s.where}`)
    print(`secretfs: ${options.mode}`)
    for (const line of options.hints ?? []) print(line)
    print(`secretfs: running as pid ${process.pid}; stop it with Ctrl-C or: kill -TERM ${process.pid}`)
    await signalled
    await daemon.stop()
    return 0
  } catch (e) {
    if (daemon) {
      log.error('shutdown failed', e)
      return 1
    }
    await options.core.close().catch((c: unknown) => log.error(`closing the core failed: ${describe(c)}`))
    throw e
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('uncaughtException', onCrash)
    process.off('unhandledRejection', onCrash)
  }
}
