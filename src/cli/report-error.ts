// Turns any failure of a command into the message a user can act on, and its exit code. Loaded
// only when something failed.

import { ApiError, DaemonTimeout, DaemonUnreachable, UntrustedSocket } from '../api/api-client.js'
import { SecretfsError } from '../errors.js'
import { CliError, ContextError, EXIT_FAILED } from './cli-error.js'

const START_HINT =
  'Start one with `secretfs server --mountpoint DIR` (add --dev to try it out with an in-memory store),\n' +
  'or, if it listens elsewhere, point to it with --address SOCKET or SECRETFS_ADDR=SOCKET.'

/** Writes the message to stderr and returns the exit code. */
export function reportError(error: unknown, write: (text: string) => void = (s) => process.stderr.write(s)): number {
  let context: string | undefined
  let e = error
  if (e instanceof ContextError) {
    context = e.context
    e = e.cause
  }
  const lead = context ? `Error ${context}: ` : 'Error: '
  if (e instanceof DaemonUnreachable) {
    if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
      write(`Error: no secretfs daemon is running at ${e.socketPath}.\n${START_HINT}\n`)
    } else if (e.code === 'ECONNRESET' || e.code === 'EPIPE') {
      write(
        `${lead}the daemon at ${e.socketPath} closed the connection without answering: it may have stopped (see its log).\n`,
      )
    } else if (e.code === 'EACCES' || e.code === 'EPERM') {
      write(`Error: permission denied on ${e.socketPath}: the daemon there belongs to another user.\n`)
    } else {
      write(`Error: cannot reach the daemon at ${e.socketPath} (${e.code}).\n`)
    }
    return EXIT_FAILED
  }
  if (e instanceof UntrustedSocket) {
    write(`Error: ${e.message}.\n${e.hint}\n`)
    return EXIT_FAILED
  }
  if (e instanceof DaemonTimeout) {
    write(
      `Error: ${e.message}.\nIt may be stuck, or busy with something slow; to wait longer, set SECRETFS_CLIENT_TIMEOUT to a number of seconds.\n`,
    )
    return EXIT_FAILED
  }
  if (e instanceof ApiError) {
    // 503 is also a store that cannot be reached (PostgreSQL down), whose message says so.
    if (e.status === 503 && /\bsealed\b/.test(e.message)) {
      write(
        `${lead}secretfs is sealed.\nUnseal it with \`secretfs unseal\` (it asks for the passphrase, or give --passphrase-file or --key-file).\n`,
      )
      return EXIT_FAILED
    }
    write(`${lead}${e.message}\n`)
    return EXIT_FAILED
  }
  if (e instanceof CliError) {
    write(`${lead}${e.message}\n${e.hint ? e.hint + '\n' : ''}`)
    return e.exitCode
  }
  if (e instanceof SecretfsError) {
    write(`${lead}${e.message}\n`)
    return EXIT_FAILED
  }
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  write(
    `${lead}${(e as Error | undefined)?.message ?? String(e)}${code && !String((e as Error).message).includes(code) ? ` (${code})` : ''}\n`,
  )
  return EXIT_FAILED
}
