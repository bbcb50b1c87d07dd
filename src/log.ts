// The daemon's log. Callers pass fixed messages and error kinds, never a path, a name or a value:
// a log line must be safe to paste into a bug report.

import { SecretfsError } from './errors.js'

export interface Logger {
  info(message: string): void
  warn(message: string, error?: unknown): void
  error(message: string, error?: unknown): void
}

/** An error's kind and message: core messages are written to be safe to log. */
export function describe(error: unknown): string {
  if (error instanceof SecretfsError) {
    const cause = error.cause === undefined ? '' : ` (cause: ${describe(error.cause)})`
    return `${error.kind}: ${error.message}${cause}`
  }
  // Foreign errors (a driver, the OS) can quote their arguments; keep only their code.
  const code = (error as { code?: unknown } | undefined)?.code
  return `${(error as Error | undefined)?.name ?? 'Error'}${typeof code === 'string' ? ` ${code}` : ''}`
}

export const stderrLogger: Logger = {
  info: (m) => process.stderr.write(`${new Date().toISOString()} [info] ${m}\n`),
  warn: (m, e) => process.stderr.write(`${new Date().toISOString()} [warn] ${m}${e ? `: ${describe(e)}` : ''}\n`),
  error: (m, e) => process.stderr.write(`${new Date().toISOString()} [error] ${m}${e ? `: ${describe(e)}` : ''}\n`),
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} }

/**
 * `log`, with a warning or error about an unreachable store that repeats within `windowMs` written
 * once: the repeats are counted, and their number written when the window ends. (While the store
 * is unreachable, every request fails the same way.) Lines differ by their message and their
 * error's message. Every other line is written as it comes: a refused write's reason, say, is
 * what its writer looks for at once.
 */
export function foldRepeats(log: Logger, windowMs = 30_000): Logger {
  const open = new Map<string, { repeats: number }>()
  const fold = (level: 'warn' | 'error') => (message: string, error?: unknown) => {
    if (!(error instanceof SecretfsError && error.kind === 'unavailable')) return log[level](message, error)
    const line = `${level} ${message}: ${describe(error)}`
    const seen = open.get(line)
    if (seen) {
      seen.repeats++
      return
    }
    log[level](message, error)
    const window = { repeats: 0 }
    open.set(line, window)
    setTimeout(() => {
      open.delete(line)
      if (window.repeats > 0) log[level](`${message} (and ${window.repeats} more like it since)`, error)
    }, windowMs).unref()
  }
  return { info: (message) => log.info(message), warn: fold('warn'), error: fold('error') }
}
