// Which socket the CLI talks to: --address, else SECRETFS_ADDR, else the first default location
// where a socket exists (the same list the daemon chooses from).

import { lstatSync } from 'node:fs'
import { ApiClient } from '../api/api-client.js'
import { parseAddress, socketCandidates } from '../api/socket-path.js'
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

/** A client of the daemon that --address, SECRETFS_ADDR or the defaults name. */
export function connect(flag: string | undefined): ApiClient {
  return new ApiClient(resolveAddress(flag).socketPath)
}
