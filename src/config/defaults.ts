// Where secretfs keeps things by default, and how long the CLI waits: the data directory and the
// store file in it. Shared by the daemon and the CLI, so it imports nothing heavier than node:path.

import { join, resolve } from 'node:path'

/** The store's file inside a data directory. */
export const STORE_FILE = 'secretfs.db'

export type Env = Record<string, string | undefined>

/**
 * $SECRETFS_DATA, else $XDG_DATA_HOME/secretfs, else ~/.local/share/secretfs; undefined when none
 * can be known.
 */
export function defaultDataDir(env: Env = process.env): string | undefined {
  if (env.SECRETFS_DATA) return resolve(env.SECRETFS_DATA)
  const xdg = env.XDG_DATA_HOME
  if (xdg && xdg.startsWith('/')) return join(xdg, 'secretfs')
  const home = env.HOME
  if (home && home.startsWith('/')) return join(home, '.local', 'share', 'secretfs')
  return undefined
}

/**
 * How long the CLI waits for the daemon to answer (SECRETFS_CLIENT_TIMEOUT): long enough for an
 * unseal's Argon2id run queued behind another one on a slow machine.
 */
export const DEFAULT_CLIENT_TIMEOUT_SECONDS = 60

/** The store file of a data directory. */
export const storeFile = (dataDir: string): string => join(dataDir, STORE_FILE)
