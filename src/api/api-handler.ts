// The control API's routes, shaped like Vault's: each request (method, target, body) becomes one
// core call and a JSON response. Transport-free: the server hands it requests already read.

import type { Core, SealStatus } from '../core/core.js'
import type { Lease } from '../backends/backend.js'
import { mountsJson } from '../backends/system-backend.js'
import { encodeFields, isFields, presentValue } from '../core/secret-data.js'
import { wipe } from '../crypto/secure-key.js'
import { invalid, notFound } from '../errors.js'
import { leaseInfo, ttlOf } from '../format/lease.js'
import type { Logger } from '../log.js'
import { parseDuration } from './duration.js'
import { errorResponse } from './http-status.js'
import { readUnsealBody } from './unseal-body.js'
import { parseTarget, queryFlag, type RequestTarget } from './request-target.js'

export interface ApiRequest {
  method: string
  /** The raw request target, such as '/v1/secret/db?list=true'. */
  target: string
  contentType?: string
  body: Buffer
}

export interface ApiResponse {
  status: number
  headers?: Record<string, string>
  /** A JSON value, or raw bytes (sent as application/octet-stream). */
  body?: unknown
}

/** A request for a method the path does not take. */
class MethodNotAllowed extends Error {
  constructor(readonly allowed: string[]) {
    super('method not allowed')
  }
}

const noContent = (): ApiResponse => ({ status: 204 })
const json = (body: unknown, status = 200): ApiResponse => ({ status, body })

/** Vault's envelope for data a read returns. */
function envelope(data: unknown, lease?: Lease): Record<string, unknown> {
  return {
    lease_id: lease?.id ?? '',
    lease_duration: lease ? ttlOf(lease) : 0,
    renewable: lease?.renewable ?? false,
    data,
  }
}

/** A mount's path as the filesystem names it: 'secret/' → 'secret'. */
export class ApiHandler {
  readonly #core: Core
  readonly #log: Logger
  /** One unseal at a time: each passphrase attempt costs an Argon2id run of 256 MiB. */
  #unsealing: Promise<unknown> = Promise.resolve()

  constructor(core: Core, log: Logger) {
    this.#core = core
    this.#log = log
  }

  async handle(req: ApiRequest): Promise<ApiResponse> {
    try {
      const response = await this.#route(req, parseTarget(req.target))
      // A change is answered once the mount has followed it (the kernel's caches told), so that
      // whatever the client does next on the mount sees it.
      if (req.method !== 'GET' && req.method !== 'HEAD') await this.#core.changesApplied()
      return response
    } catch (e) {
      if (e instanceof MethodNotAllowed)
        return {
          status: 405,
          headers: { Allow: e.allowed.join(', ') },
          body: { errors: [`method ${req.method} is not allowed here; use ${e.allowed.join(' or ')}`] },
        }
      const { status, message, internal } = errorResponse(e)
      if (internal) this.#log.error(`api: ${req.method} request failed with ${status}`, e)
      return json({ errors: [message] }, status)
    }
  }

  async #route(req: ApiRequest, target: RequestTarget): Promise<ApiResponse> {
    const [first, second, ...more] = target.segments
    const m = req.method
    if (first === 'sys' && second !== undefined) {
      if (second === 'mounts' && more.length === 0) {
        allow(m, 'GET')
        const mounts = mountsJson(this.#core.mounts())
        return json({ ...mounts, ...envelope(mounts) })
      }
      if (second === 'mounts') {
        const path = more.join('/')
        if (allow(m, 'POST', 'PUT', 'DELETE') === 'DELETE') {
          await this.#core.unmount(path)
          return noContent()
        }
        return this.#mount(path, jsonObject(req))
      }
      if (second === 'remount' && more.length === 0) {
        allow(m, 'POST', 'PUT')
        const body = jsonObject(req)
        const from = stringField(body, 'from')
        await this.#core.remount(from, stringField(body, 'to'))
        return noContent()
      }
      if (second === 'seal' && more.length === 0) {
        allow(m, 'POST', 'PUT')
        if (this.#core.ephemeral)
          throw invalid(
            'this is a dev server: its store and its only key are in memory, so sealing it would lose every secret for good; stop it (Ctrl-C) instead, or use a real store (secretfs init)',
          )
        this.#core.seal()
        return noContent()
      }
      if (second === 'unseal' && more.length === 0) {
        allow(m, 'POST', 'PUT')
        return this.#unseal(req)
      }
      if (second === 'seal-status' && more.length === 0) {
        allow(m, 'GET')
        return json(await this.#sealStatus())
      }
      if (second === 'rotate' && more.length === 0) {
        allow(m, 'POST', 'PUT')
        const term = await this.#core.rotate()
        return json({ term, data: { term } })
      }
      if (second === 'leases') return this.#leases(req, target, more)
      // The routes of Vault's early days, as the seed's walkthrough uses them.
      if (second === 'revoke' || second === 'revoke-prefix' || second === 'revoke-force' || second === 'renew')
        return this.#leases(req, target, [second, ...more])
      if (second === 'health' && more.length === 0) {
        allow(m, 'GET', 'HEAD')
        const status = await this.#sealStatus()
        const code = !status.initialized ? 501 : status.sealed ? 503 : 200
        // Every daemon sharing a store serves every request; `leader` says which revokes at expiry.
        const body = {
          ...status,
          ha_enabled: status.leader !== undefined,
          standby: false,
          server_time_utc: Math.floor(Date.now() / 1000),
        }
        return m === 'HEAD' ? { status: code } : json(body, code)
      }
    }
    return this.#logical(req, target)
  }

  /** Requests on secrets: /v1/MOUNT/PATH. */
  async #logical(req: ApiRequest, target: RequestTarget): Promise<ApiResponse> {
    const path = target.segments.join('/') + (target.trailingSlash && target.segments.length ? '/' : '')
    const method = allow(req.method, 'GET', 'LIST', 'PUT', 'POST', 'DELETE')
    if (method === 'LIST' || (method === 'GET' && queryFlag(target.query, 'list'))) {
      return json(envelope({ keys: await this.#core.list(path) }))
    }
    if (path === '') throw invalid('name a path, such as /v1/secret/NAME, or list /v1/ for the mounts')
    switch (method) {
      case 'GET': {
        const format = target.query.get('format')
        if (format !== null && format !== 'raw' && format !== 'json')
          throw invalid('the query parameter format must be raw or json')
        const result = await this.#core.read(path)
        // The decrypted value is ours to zero once the response is made (the server zeroes the
        // response's bytes once they are sent).
        try {
          if (format === 'raw') {
            const headers: Record<string, string> = {}
            if (result.credential) headers['X-Secretfs-Credential'] = result.credential
            if (result.lease) {
              const e = envelope(null, result.lease)
              headers['X-Secretfs-Lease-Id'] = String(e.lease_id)
              headers['X-Secretfs-Lease-Duration'] = String(e.lease_duration)
            }
            return { status: 200, headers, body: Buffer.from(result.value) }
          }
          const { data, encoding } = presentValue(result.value)
          return json({ ...envelope(data, result.lease), ...(encoding && { encoding }) })
        } finally {
          result.value.fill(0)
        }
      }
      case 'PUT':
      case 'POST': {
        const raw = (req.contentType ?? '').toLowerCase().startsWith('application/octet-stream')
        if (!raw && req.body.length === 0)
          throw invalid(
            'the request body is empty: send a JSON object of fields, or raw bytes as application/octet-stream',
          )
        const value = raw ? req.body : encodeFields(jsonObject(req))
        try {
          await this.#core.write(path, value)
        } finally {
          value.fill(0)
        }
        return noContent()
      }
      default: {
        await this.#core.delete(path)
        return noContent()
      }
    }
  }

  /**
   * Vault's sys/leases routes: lookup (a body's lease_id; LIST lookup/PREFIX for the tree of IDs),
   * renew and revoke (a body's lease_id or the ID in the path), revoke-prefix/PREFIX and
   * revoke-force/PREFIX.
   */
  async #leases(req: ApiRequest, target: RequestTarget, segments: string[]): Promise<ApiResponse> {
    const [action, ...rest] = segments
    const inPath = rest.join('/')
    const m = req.method
    if (action === 'lookup' && (m === 'LIST' || (m === 'GET' && queryFlag(target.query, 'list')))) {
      const prefix = inPath === '' ? '' : inPath + '/'
      return json(envelope({ keys: this.#core.listLeases(prefix) }))
    }
    allow(m, 'PUT', 'POST')
    const body = jsonObject(req)
    const leaseId = () => {
      const id = inPath || own(body, 'lease_id')
      if (typeof id !== 'string' || id === '')
        throw invalid('name the lease: lease_id in the body, or its ID in the path')
      return id
    }
    switch (action) {
      case 'lookup':
        return json({ data: leaseInfo(this.#core.lookupLease(leaseId())) })
      case 'renew': {
        const given = own(body, 'increment')
        const increment = given === undefined ? undefined : parseDuration(given, 'the increment')
        const lease = await this.#core.renewLease(leaseId(), increment)
        return json({ lease_id: lease.id, renewable: lease.renewable, lease_duration: ttlOf(lease), data: null })
      }
      case 'revoke':
        await this.#core.revokeLease(leaseId())
        return noContent()
      case 'revoke-prefix':
      case 'revoke-force':
        if (inPath === '') throw invalid('name the prefix in the path, such as sys/leases/revoke-prefix/aws/creds')
        await this.#core.revokeLeasePrefix(inPath, action === 'revoke-force')
        return noContent()
    }
    throw notFound('no such lease operation; use lookup, renew, revoke, revoke-prefix or revoke-force')
  }

  async #mount(path: string, body: Record<string, unknown>): Promise<ApiResponse> {
    const type = own(body, 'type')
    if (typeof type !== 'string' || type === '') throw invalid('a mount needs a type, such as generic')
    const description = own(body, 'description') ?? ''
    if (typeof description !== 'string') throw invalid('the description must be a string')
    const config = own(body, 'config') ?? {}
    if (!isFields(config)) throw invalid('config must be an object')
    const defaultTtl = own(config, 'default_lease_ttl')
    const maxTtl = own(config, 'max_lease_ttl')
    await this.#core.mount(path, type, {
      description,
      config: {
        ...(defaultTtl !== undefined && { defaultLeaseTtl: parseDuration(defaultTtl, 'the default lease TTL') }),
        ...(maxTtl !== undefined && { maxLeaseTtl: parseDuration(maxTtl, 'the max lease TTL') }),
      },
    })
    return noContent()
  }

  async #unseal(req: ApiRequest): Promise<ApiResponse> {
    // Read in its turn, so that however many unseals wait, one secret at a time is in secure memory.
    const run = this.#unsealing.then(async () => {
      const unlock = readUnsealBody(req.body)
      try {
        await this.#core.unseal(unlock)
      } finally {
        wipe(unlock.kind === 'key-file' ? unlock.key : unlock.passphrase)
      }
    })
    this.#unsealing = run.catch(() => {})
    await run
    return json(await this.#sealStatus())
  }

  async #sealStatus(): Promise<SealStatus> {
    await this.#core.initialized()
    return this.#core.sealStatus()
  }
}

/** The method, if the path takes it; a 405 naming the ones it does take otherwise. */
function allow(method: string, ...allowed: string[]): string {
  if (!allowed.includes(method)) throw new MethodNotAllowed(allowed)
  return method
}

function jsonObject(req: ApiRequest): Record<string, unknown> {
  if (req.body.length === 0) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(req.body.toString('utf8'))
  } catch {
    throw invalid('the request body is not valid JSON')
  }
  if (!isFields(parsed)) throw invalid('the request body must be a JSON object')
  return parsed
}

/** A field of a request body: its own properties only, never one inherited from Object. */
function own(body: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(body, name) ? body[name] : undefined
}

function stringField(body: Record<string, unknown>, name: string): string {
  const v = own(body, name)
  if (typeof v !== 'string' || v === '') throw invalid(`${name} must be a non-empty string`)
  return v
}
