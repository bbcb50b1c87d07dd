// A small client of the control API for the CLI: one method per route, over the Unix socket.
// Imports node:http only, so that a quick `secretfs read` stays quick.

import http from 'node:http'

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
}

export interface MountRequest {
  type: string
  description?: string
  config?: { default_lease_ttl?: string | number; max_lease_ttl?: string | number }
}

export type UnsealRequest = { key: string } | { passphrase: string }

/** '/v1/' and the path, each component percent-encoded; a trailing '/' is kept. */
export function apiPath(path: string): string {
  return '/v1/' + path.split('/').map(encodeURIComponent).join('/')
}

export class ApiClient {
  constructor(readonly socketPath: string) {}

  request(method: string, target: string, body?: { json: unknown } | { raw: Uint8Array }): Promise<RawResponse> {
    const payload = body === undefined ? undefined : 'raw' in body ? body.raw : Buffer.from(JSON.stringify(body.json))
    const headers: Record<string, string | number> = { 'Content-Length': payload?.length ?? 0 }
    if (body) headers['Content-Type'] = 'raw' in body ? 'application/octet-stream' : 'application/json'
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, method, path: target, headers, agent: false }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      })
      req.on('error', (e: NodeJS.ErrnoException) =>
        reject(e.code && e.code !== 'ECONNRESET' ? new DaemonUnreachable(this.socketPath, e.code) : e),
      )
      req.end(payload)
    })
  }

  /** The JSON of a successful response, or an ApiError. */
  async json<T>(method: string, target: string, body?: { json: unknown } | { raw: Uint8Array }): Promise<T> {
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
    await this.json('POST', '/v1/sys/remount', { json: { from, to } })
  }

  sealStatus(): Promise<SealStatusResponse> {
    return this.json('GET', '/v1/sys/seal-status')
  }

  async seal(): Promise<void> {
    await this.json('POST', '/v1/sys/seal')
  }

  unseal(request: UnsealRequest): Promise<SealStatusResponse> {
    return this.json('POST', '/v1/sys/unseal', { json: request })
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
