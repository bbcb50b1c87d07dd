// A reason the daemon cannot start that the user can fix; its message says how.

export class DaemonError extends Error {
  override readonly name = 'DaemonError'
}
