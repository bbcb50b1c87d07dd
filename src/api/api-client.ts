// A small client of the control API for the CLI: one method per route, over the Unix socket.
// It sends nothing to a socket that another user could have put there, and gives up on a daemon
// that does not answer. Imports node:http and small modules only, so that a quick `secretfs read`
// stays quick.

import { lstat } from 'node:fs/promises'
import http from 'node:http'
import { basename, dirname } from 'node:path'
import { DEFAULT_CLIENT_TIMEOUT_SECONDS } from '../config/defaults.js'
import { NotPrivate, currentUid, insideHandle, notOwned, openPrivateDir } from '../os/private-path.js'

/** The daemon answered with an error status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
  ) {
    super(errors.join('; ') || `the daemon answered ${status}`)
    this.name = 'ApiError'
  }
}

/** Nothing answered on the socket (no daemon, a stale socket, no permission). */
export class DaemonUnreachable extends Error {
  constructor(
    readonly socketPath: string,
    readonly code: string,
  ) {
    super(`cannot reach the daemon at ${socketPath} (${code})`)
    this.name = 'DaemonUnreachable'
  }
}

/**
 * The socket, or its directory, is not the user's alone: whoever listens there may not be the
 * user's daemon, so nothing was sent. `hint` says how to fix it.
 */
export class UntrustedSocket extends Error {
  constructor(
    readonly socketPath: string,
    readonly reason: string,
    readonly hint: string,
  ) {
    super(`will not send anything to ${socketPath}: ${reason}`)
    this.name = 'UntrustedSocket'
  }
}

/** The daemon took the connection but did not answer in time. */
export class DaemonTimeout extends Error {
  constructor(
    readonly socketPath: string,
    readonly seconds: number,
  ) {
    super(`the daemon at ${socketPath} did not answer within ${seconds} s`)
    this.name = 'DaemonTimeout'
  }
}

export interface RawResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

export interface SecretResponse {
  data: Record<string, unknown>
  lease_id: string
  lease_duration: number
  renewable: boolean
  encoding?: 'base64'
}

/** A secret's stored bytes, with the lease it came with ('' and 0 when none). */
export interface RawSecret {
  value: Buffer
  leaseId: string
  /** Seconds the lease had left when read (rounded to the nearest). */
  leaseDuration: number
  /** The kind of credential its fields are, when the backend says (see ReadResult.credential). */
  credential?: string
}

export interface MountInfo {
  type: string
  description: string
  uuid: string
  config: { default_lease_ttl: number; max_lease_ttl: number }
}

export interface SealStatusResponse {
  initialized: boolean
  sealed: boolean
  term?: number
  /** On a store that daemons share: whether this one leads (revokes leases at expiry). */
  leader?: boolean
}

/** Vault's lease lookup (sys/leases/lookup). */
export interface LeaseInfo {
  id: string
  issue_time: string
  expire_time: string
  last_renewal: string | null
  renewable: boolean
  ttl: number
  revoke_error?: string
  revoke_attempts?: number
}

export interface RenewResponse {
  lease_id: string
  lease_duration: number
  renewable: boolean
}

export interface MountRequest {
  type: string
  description?: string
  config?: { default_lease_ttl?: string | number; max_lease_ttl?: string | number }
}

type Body = { json: unknown } | { raw: Uint8Array } | { encodedJson: Uint8Array }

/** '/v1/' and the path, each component percent-encoded; a trailing '/' is kept. */
export function apiPath(path: string): string {
  return '/v1/' + decoded(path).split('/').map(encodeURIComponent).join('/')
}

/**
 * `path`, unless it holds U+FFFD: a command line's argument that is not UTF-8 reaches Node with it
 * in place of what could not be decoded, and so would name another secret (the one with that
 * character), the same for every such argument.
 */
function decoded(path: string): string {
  if (path.includes('\uFFFD'))
    throw new Error('a path must be UTF-8 text: this one has bytes that are not, or the character U+FFFD')
  return path
}

export class ApiClient {
  constructor(
    readonly socketPath: string,
    /** How long to wait for the daemon to answer, in seconds. */
    readonly timeoutSeconds: number = DEFAULT_CLIENT_TIMEOUT_SECONDS,
  ) {}

  async request(method: string, target: string, body?: Body): Promise<RawResponse> {
    const dir = await this.#openSocketDir()
    try {
      // Connected through the checked directory, so the socket is the one checked.
      const socket = insideHandle(dir, basename(this.socketPath))
      await this.#checkSocket(socket)
      return await this.#exchange(socket, method, target, body)
    } finally {
      await dir.close()
    }
  }

  async #openSocketDir() {
    const dir = dirname(this.socketPath)
    try {
      return await openPrivateDir(dir)
    } catch (e) {
      if (e instanceof NotPrivate) {
        const fix =
          e.problem === 'owner'
            ? `${dir} is not yours to remove: ask an administrator to remove it and restart your daemon`
            : `Remove ${dir} and restart your daemon (which creates it 0700)`
        throw new UntrustedSocket(
          this.socketPath,
          `its directory ${dir} ${e.reason}`,
          `${fix}, or point SECRETFS_ADDR at your daemon's socket.`,
        )
      }
      const code = (e as NodeJS.ErrnoException).code
      if (code) throw new DaemonUnreachable(this.socketPath, code)
      throw e
    }
  }

  async #checkSocket(socket: string): Promise<void> {
    let st
    try {
      st = await lstat(socket)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code) throw new DaemonUnreachable(this.socketPath, code)
      throw e
    }
    const reason = !st.isSocket() ? 'it is not a socket' : st.uid !== currentUid() ? `it ${notOwned(st)}` : undefined
    if (reason)
      throw new UntrustedSocket(
        this.socketPath,
        reason,
        `Remove ${this.socketPath} and restart your daemon, or point SECRETFS_ADDR at your daemon's socket.`,
      )
  }

  #exchange(socketPath: string, method: string, target: string, body?: Body): Promise<RawResponse> {
    const payload =
      body === undefined
        ? undefined
        : 'raw' in body
          ? body.raw
          : 'encodedJson' in body
            ? body.encodedJson
            : Buffer.from(JSON.stringify(body.json))
    const headers: Record<string, string | number> = { 'Content-Length': payload?.length ?? 0 }
    if (body) headers['Content-Type'] = 'raw' in body ? 'application/octet-stream' : 'application/json'
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath, method, path: target, headers, agent: false }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      })
      // Idle time: a large answer that keeps coming is not cut off.
      req.setTimeout(this.timeoutSeconds * 1000, () =>
        req.destroy(new DaemonTimeout(this.socketPath, this.timeoutSeconds)),
      )
      req.on('error', (e: NodeJS.ErrnoException) => reject(e.code ? new DaemonUnreachable(this.socketPath, e.code) : e))
      req.end(payload)
    })
  }

  /** The JSON of a successful response, or an ApiError. */
  async json<T>(method: string, target: string, body?: Body): Promise<T> {
    const res = await this.request(method, target, body)
    check(res)
    return (res.body.length ? JSON.parse(res.body.toString('utf8')) : undefined) as T
  }

  read(path: string): Promise<SecretResponse> {
    return this.json('GET', apiPath(path))
  }

  /** The stored bytes exactly. */
  async readRaw(path: string): Promise<Buffer> {
    const res = await this.request('GET', apiPath(path) + '?format=raw')
    check(res)
    return res.body
  }

  /** The stored bytes exactly, and the lease of a generated secret (from the response's headers). */
  async readRawSecret(path: string): Promise<RawSecret> {
    const res = await this.request('GET', apiPath(path) + '?format=raw')
    check(res)
    const leaseId = res.headers['x-secretfs-lease-id']
    const duration = Number(res.headers['x-secretfs-lease-duration'])
    const credential = res.headers['x-secretfs-credential']
    return {
      ...(typeof credential === 'string' && { credential }),
      value: res.body,
      leaseId: typeof leaseId === 'string' ? leaseId : '',
      leaseDuration: Number.isFinite(duration) ? duration : 0,
    }
  }

  async list(path: string): Promise<string[]> {
    const r = await this.json<{ data: { keys: string[] } }>('GET', apiPath(path) + '?list=true')
    return r.data.keys
  }

  async write(path: string, fields: Record<string, unknown>): Promise<void> {
    await this.json('PUT', apiPath(path), { json: fields })
  }

  async writeRaw(path: string, value: Uint8Array): Promise<void> {
    await this.json('PUT', apiPath(path), { raw: value })
  }

  async delete(path: string): Promise<void> {
    await this.json('DELETE', apiPath(path))
  }

  async mounts(): Promise<Record<string, MountInfo>> {
    return (await this.json<{ data: Record<string, MountInfo> }>('GET', '/v1/sys/mounts')).data
  }

  async mount(path: string, request: MountRequest): Promise<void> {
    await this.json('POST', apiPath('sys/mounts/' + path), { json: request })
  }

  async unmount(path: string): Promise<void> {
    await this.json('DELETE', apiPath('sys/mounts/' + path))
  }

  async remount(from: string, to: string): Promise<void> {
    await this.json('POST', '/v1/sys/remount', { json: { from: decoded(from), to: decoded(to) } })
  }

  sealStatus(): Promise<SealStatusResponse> {
    return this.json('GET', '/v1/sys/seal-status')
  }

  async seal(): Promise<void> {
    await this.json('POST', '/v1/sys/seal')
  }

  /**
   * `body` is the request's JSON, {"key": ...} or {"passphrase": ...}, encoded by the caller so
   * that it can stay in memory the caller wipes.
   */
  unseal(body: Uint8Array): Promise<SealStatusResponse> {
    return this.json('POST', '/v1/sys/unseal', { encodedJson: body })
  }

  async lookupLease(id: string): Promise<LeaseInfo> {
    return (await this.json<{ data: LeaseInfo }>('PUT', '/v1/sys/leases/lookup', { json: { lease_id: id } })).data
  }

  /** Names under `prefix` in the tree of lease IDs; directories end in '/'. */
  async listLeases(prefix: string): Promise<string[]> {
    const target = prefix === '' ? '/v1/sys/leases/lookup/' : apiPath('sys/leases/lookup/' + prefix)
    return (await this.json<{ data: { keys: string[] } }>('GET', target + '?list=true')).data.keys
  }

  renewLease(id: string, increment?: string): Promise<RenewResponse> {
    return this.json('PUT', '/v1/sys/leases/renew', {
      json: { lease_id: id, ...(increment !== undefined && { increment }) },
    })
  }

  async revokeLease(id: string): Promise<void> {
    await this.json('PUT', '/v1/sys/leases/revoke', { json: { lease_id: id } })
  }

  /** Revokes every lease under `prefix`; `force` drops them without asking their backend. */
  async revokeLeasePrefix(prefix: string, force = false): Promise<void> {
    await this.json('PUT', apiPath(`sys/leases/${force ? 'revoke-force' : 'revoke-prefix'}/${prefix}`))
  }

  async rotate(): Promise<number> {
    return (await this.json<{ term: number }>('POST', '/v1/sys/rotate')).term
  }
}

function check(res: RawResponse): void {
  if (res.status < 400) return
  let errors: string[] = []
  try {
    const body = JSON.parse(res.body.toString('utf8')) as { errors?: unknown }
    if (Array.isArray(body.errors)) errors = body.errors.map(String)
  } catch {
    // Not our JSON; the status says enough.
  }
  throw new ApiError(res.status, errors)
}
