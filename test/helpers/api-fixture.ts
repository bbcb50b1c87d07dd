// Test helper: a control API server over a core in the test process, on a socket in a fresh
// directory, closed in teardown; plus raw HTTP requests to it (node:http, or bytes over net for
// what node's client will not send).

import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { startApiServer, type ApiServerOptions } from '../../src/api/api-server.js'
import type { Unlock } from '../../src/barrier/seal-config.js'
import { Core } from '../../src/core/core.js'
import { silentLogger } from '../../src/log.js'
import { MemoryStorage } from '../../src/storage/memory-storage.js'
import type { Scope } from './daemon.js'

export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  /** The body parsed as JSON (undefined when empty). */
  json: any
}

export interface TestApi {
  core: Core
  socketPath: string
  request(method: string, target: string, body?: string | Buffer, headers?: Record<string, string>): Promise<Reply>
  /** Sends `bytes` as they are and returns the raw reply. */
  raw(bytes: string): Promise<string>
}

/** A socket path in a new directory (short, under /tmp, so it fits in sun_path). */
export async function socketDir(t: Scope): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sfs-api-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

/** A core unlocked by `unlock`, initialised and unsealed, in memory. */
export async function coreWith(unlock: Unlock): Promise<Core> {
  const core = new Core({ storage: new MemoryStorage() })
  await core.initialize(unlock)
  await core.unseal(unlock)
  return core
}

export async function startTestApi(
  t: Scope,
  options: { core?: Core } & Partial<Omit<ApiServerOptions, 'log'>> = {},
): Promise<TestApi> {
  const core = options.core ?? (await Core.dev())
  const socketPath = options.socketPath ?? path.join(await socketDir(t), 'run', 'api.sock')
  const server = await startApiServer(core, {
    socketPath,
    log: silentLogger,
    ...(options.maxBodyBytes !== undefined && { maxBodyBytes: options.maxBodyBytes }),
  })
  t.teardown(async () => {
    await server.close()
    await core.close()
  })
  return { core, socketPath, request: (...a) => request(socketPath, ...a), raw: (b) => raw(socketPath, b) }
}

export function request(
  socketPath: string,
  method: string,
  target: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const length =
      body === undefined || 'Transfer-Encoding' in headers ? {} : { 'Content-Length': String(Buffer.byteLength(body)) }
    const req = http.request(
      { socketPath, method, path: target, headers: { ...length, ...headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const b = Buffer.concat(chunks)
          let json: unknown
          if (String(res.headers['content-type']).startsWith('application/json')) json = JSON.parse(b.toString())
          resolve({ status: res.statusCode!, headers: res.headers, body: b, json })
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

export function raw(socketPath: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath)
    let out = ''
    socket.on('data', (d) => (out += d.toString('latin1')))
    socket.on('end', () => resolve(out))
    socket.on('error', reject)
    socket.write(Buffer.from(bytes, 'latin1'))
  })
}

/** The status code and JSON body of a raw reply. */
export function parseRaw(reply: string): { status: number; json: any } {
  const status = Number(/^HTTP\/1\.1 (\d+)/.exec(reply)?.[1])
  const body = reply.slice(reply.indexOf('\r\n\r\n') + 4)
  return { status, json: body ? JSON.parse(body) : undefined }
}
