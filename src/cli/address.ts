// Which socket the CLI talks to: --address, else SECRETFS_ADDR, else the first default location
// where a socket exists (the same list the daemon chooses from); and how long it waits for an
// answer (SECRETFS_CLIENT_TIMEOUT, seconds). The client checks whose socket it is before sending.

import { lstatSync } from 'node:fs'
import { ApiClient } from '../api/api-client.js'
import { parseAddress, socketCandidates } from '../api/socket-path.js'
import { DEFAULT_CLIENT_TIMEOUT_SECONDS } from '../config/defaults.js'
import { UsageError } from './cli-error.js'

export interface Address {
  socketPath: string
  /** How it was chosen, for error messages. */
  source: 'flag' | 'env' | 'default'
  /** For 'default': every place looked at. */
  searched?: string[]
}

export function resolveAddress(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Address {
  try {
    if (flag !== undefined) return { socketPath: parseAddress(flag), source: 'flag' }
    if (env.SECRETFS_ADDR) return { socketPath: parseAddress(env.SECRETFS_ADDR), source: 'env' }
  } catch (e) {
    throw new UsageError(`${flag !== undefined ? '--address' : 'SECRETFS_ADDR'}: ${(e as Error).message}`)
  }
  const searched = socketCandidates(env)
  const found = searched.find(isSocket)
  return { socketPath: found ?? searched[0]!, source: 'default', searched }
}

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket()
  } catch {
    return false
  }
}

/** Seconds to wait for the daemon: SECRETFS_CLIENT_TIMEOUT, else the default. */
export function clientTimeout(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.SECRETFS_CLIENT_TIMEOUT
  if (text === undefined || text === '') return DEFAULT_CLIENT_TIMEOUT_SECONDS
  const seconds = Number(text)
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new UsageError(
      `SECRETFS_CLIENT_TIMEOUT must be a number of seconds, such as ${DEFAULT_CLIENT_TIMEOUT_SECONDS}`,
    )
  return seconds
}

/** A client of the daemon that --address, SECRETFS_ADDR or the defaults name. */
export function connect(flag: string | undefined): ApiClient {
  return new ApiClient(resolveAddress(flag).socketPath, clientTimeout())
}
