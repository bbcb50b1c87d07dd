// The control API's HTTP server on a Unix socket: a socket 0600 in a directory only its owner can
// enter, bodies read up to a limit, and Vault's LIST method (which node's HTTP parser refuses)
// answered from the raw request.

import { chmod, lstat, mkdir, unlink } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import { dirname } from 'node:path'
import type { Duplex } from 'node:stream'
import type { Core } from '../core/core.js'
import { DEFAULT_MAX_VALUE_SIZE } from '../core/core.js'
import { SecretfsError, busy, invalid } from '../errors.js'
import type { Logger } from '../log.js'
import type { KernelCache } from '../fs/kernel-cache.js'
import { ApiHandler, type ApiRequest, type ApiResponse } from './api-handler.js'

export interface ApiServerOptions {
  socketPath: string
  log: Logger
  /** The largest request body taken; larger ones get 413. Room for a largest secret in JSON. */
  maxBodyBytes?: number
  /** The mount's kernel cache, when the filesystem is served: changes wait for it to lapse. */
  kernelCache?: KernelCache
}

export interface ApiServer {
  socketPath: string
  close(): Promise<void>
}

export const DEFAULT_MAX_BODY_BYTES = 2 * DEFAULT_MAX_VALUE_SIZE + 64 * 1024

export async function startApiServer(core: Core, options: ApiServerOptions): Promise<ApiServer> {
  const { socketPath, log } = options
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  await prepareSocketDir(dirname(socketPath))
  await removeStaleSocket(socketPath)
  const handler = new ApiHandler(core, log, options.kernelCache)

  const server = http.createServer({ requestTimeout: 60_000, headersTimeout: 10_000 }, (req, res) => {
    void serve(handler, req, res, maxBody, log)
  })
  server.on('clientError', (err: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex) => {
    void answerClientError(handler, err, socket, log)
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, () => {
      server.off('error', reject)
      resolve()
    })
  })
  try {
    // The directory already keeps others out; the mode says the same on the socket itself.
    await chmod(socketPath, 0o600)
  } catch (e) {
    server.close()
    throw e
  }
  server.on('error', (e) => log.error('api: server error', e))
  log.info('control API listening')

  let closed: Promise<void> | undefined
  return {
    socketPath,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })),
  }
}

async function serve(
  handler: ApiHandler,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  maxBody: number,
  log: Logger,
): Promise<void> {
  let body: Buffer | undefined
  try {
    body = await readBody(req, maxBody)
    if (body === undefined) {
      send(res, tooLarge(maxBody), true)
      return
    }
    const request: ApiRequest = { method: req.method ?? 'GET', target: req.url ?? '/', body }
    if (req.headers['content-type'] !== undefined) request.contentType = req.headers['content-type']
    send(res, await handler.handle(request))
  } catch (e) {
    log.error('api: failed to answer a request', e)
    if (!res.headersSent) send(res, { status: 500, body: { errors: ['internal error'] } }, true)
    else res.destroy()
  } finally {
    // Any body may hold a secret (a value, a passphrase); what is stored was copied from it.
    body?.fill(0)
  }
}

/**
 * The body, or undefined once it exceeds `max` (the rest is not read; the connection closes). The
 * chunks it came in are zeroed as soon as they are copied into it, or given up.
 */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > max) return Promise.resolve(undefined)
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const wipe = () => {
      for (const c of chunks) c.fill(0)
    }
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      size += chunk.length
      if (size > max) {
        req.off('data', onData)
        req.pause()
        wipe()
        resolve(undefined)
      }
    }
    req.on('data', onData)
    req.on('end', () => {
      const body = Buffer.concat(chunks, size)
      wipe()
      resolve(body)
    })
    req.on('error', (e) => {
      wipe()
      reject(e)
    })
  })
}

const tooLarge = (max: number): ApiResponse => ({
  status: 413,
  body: { errors: [`the request body is larger than the limit of ${max} bytes`] },
})

function encodeBody(response: ApiResponse): { type?: string; bytes?: Buffer } {
  if (response.body === undefined) return {}
  if (Buffer.isBuffer(response.body)) return { type: 'application/octet-stream', bytes: response.body }
  return { type: 'application/json', bytes: Buffer.from(JSON.stringify(response.body) + '\n') }
}

function send(res: http.ServerResponse, response: ApiResponse, close = false): void {
  const { type, bytes } = encodeBody(response)
  const headers: Record<string, string | number> = { ...response.headers, 'Cache-Control': 'no-store' }
  if (type) headers['Content-Type'] = type
  headers['Content-Length'] = bytes?.length ?? 0
  if (close) headers.Connection = 'close'
  res.writeHead(response.status, headers)
  res.end(bytes)
}

/**
 * Node's parser knows no LIST method and reports it as a client error with the raw packet; such a
 * request is answered here, then the connection closes. Any other malformed request gets a 400.
 */
async function answerClientError(
  handler: ApiHandler,
  err: Error & { code?: string; rawPacket?: Buffer },
  socket: Duplex,
  log: Logger,
): Promise<void> {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy()
    return
  }
  let response: ApiResponse
  const list = err.code === 'HPE_INVALID_METHOD' ? parseListRequest(err.rawPacket) : undefined
  if (list) {
    response = await handler.handle({ method: 'LIST', target: list, body: Buffer.alloc(0) })
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    response = { status: 431, body: { errors: ['the request headers are too large'] } }
  } else {
    log.warn('api: refused a malformed HTTP request', new SecretfsError('invalid', err.code ?? 'parse error'))
    response = { status: 400, body: { errors: ['malformed HTTP request'] } }
  }
  const { type, bytes } = encodeBody(response)
  const head = [
    `HTTP/1.1 ${response.status} ${http.STATUS_CODES[response.status] ?? ''}`,
    ...Object.entries(response.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    ...(type ? [`Content-Type: ${type}`] : []),
    'Cache-Control: no-store',
    `Content-Length: ${bytes?.length ?? 0}`,
    'Connection: close',
  ]
  socket.end(Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n'), bytes ?? Buffer.alloc(0)]))
}

/** The target of a complete `LIST <target> HTTP/1.x` request without a body, else undefined. */
function parseListRequest(raw: Buffer | undefined): string | undefined {
  if (!raw) return undefined
  const text = raw.toString('latin1')
  const end = text.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const m = /^LIST (\S+) HTTP\/1\.[01]\r\n/.exec(text)
  if (!m) return undefined
  return m[1]
}

/** Creates the socket's directory 0700, or checks that an existing one is ours alone. */
async function prepareSocketDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const st = await lstat(dir)
  if (!st.isDirectory()) throw invalid(`the socket's directory ${dir} is not a directory`)
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid
  if (st.uid !== uid) throw invalid(`the socket's directory ${dir} belongs to another user`)
  if ((st.mode & 0o077) !== 0)
    throw invalid(
      `the socket's directory ${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}); make it 0700`,
    )
}

/** Removes a socket left by a daemon that died; refuses if one still listens, or if it is not a socket. */
async function removeStaleSocket(path: string): Promise<void> {
  let st
  try {
    st = await lstat(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return
    throw e
  }
  if (!st.isSocket()) throw invalid(`${path} exists and is not a socket; choose another --address`)
  const answer = await probe(path)
  if (answer === 'listening') throw busy(`a daemon is already listening on ${path}`)
  if (answer !== 'ECONNREFUSED')
    throw invalid(`cannot tell whether ${path} is in use (${answer}); remove it or choose another --address`)
  await unlink(path)
}

/** 'listening', or the error code of a connection attempt (ECONNREFUSED: nobody listens). */
function probe(path: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(path)
    socket.once('connect', () => {
      socket.destroy()
      resolve('listening')
    })
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
  })
}
