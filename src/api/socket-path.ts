// Where the control socket lives when nobody says: the daemon listens on the first usable
// candidate and the CLI looks through the same list, so a daemon started with default settings
// (the dev server included) is found without SECRETFS_ADDR. Imports only node:path and small
// modules, so that the CLI can load it cheaply.

import { join } from 'node:path'
import { defaultDataDir, type Env } from '../config/defaults.js'
import { currentUid } from '../os/private-path.js'

export const SOCKET_NAME = 'secretfs.sock'

/** sun_path holds 108 bytes with the terminating NUL; a longer path cannot be bound. */
export const MAX_SOCKET_PATH_BYTES = 107

const fits = (path: string): boolean => Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES

/**
 * The default socket paths, best first: $XDG_RUNTIME_DIR/secretfs/, then the default data
 * directory, then a per-user directory under /tmp. Paths too long to bind are skipped.
 * The last one is always there, so the list is never empty.
 */
export function socketCandidates(env: Env = process.env, uid: number = currentUid()): string[] {
  const out: string[] = []
  const runtime = env.XDG_RUNTIME_DIR
  if (runtime && runtime.startsWith('/')) out.push(join(runtime, 'secretfs', SOCKET_NAME))
  const data = defaultDataDir(env)
  if (data) out.push(join(data, SOCKET_NAME))
  // /tmp itself rather than $TMPDIR: shells that disagree on TMPDIR must still agree on this.
  out.push(join('/tmp', `secretfs-${uid}`, SOCKET_NAME))
  return out.filter(fits)
}

/** Where a daemon started without --address listens. */
export function defaultSocketPath(env: Env = process.env, uid: number = currentUid()): string {
  return socketCandidates(env, uid)[0]!
}

/**
 * A socket address as users write it: a path, or Vault's `unix:///path` form. Relative paths are
 * taken from the current directory.
 */
export function parseAddress(address: string): string {
  let path = address.trim()
  if (path.startsWith('unix://')) path = path.slice('unix://'.length)
  else if (path.startsWith('unix:')) path = path.slice('unix:'.length)
  if (path === '') throw new Error("the address is empty; give the path of the daemon's socket")
  if (/^[a-z]+:\/\//i.test(path))
    throw new Error('secretfs listens on a Unix socket; give its path (or unix:///path), not a URL')
  return path.startsWith('/') ? path : join(process.cwd(), path)
}
