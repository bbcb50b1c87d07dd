// The control API's HTTP server on a Unix socket: a socket 0600 in a directory only its owner can
// enter, a bounded number of connections (an idle one makes room for a new one, so that seal
// always gets through), requests framed ahead of node's parser (which is how Vault's LIST gets
// through it) and answered in order, bodies read up to a limit and zeroed once answered.

import { chmod, lstat, unlink } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import { dirname } from 'node:path'
import type { Core } from '../core/core.js'
import { DEFAULT_MAX_VALUE_SIZE } from '../core/core.js'
import { SecretfsError, busy, invalid } from '../errors.js'
import type { Logger } from '../log.js'
import { NotPrivate, ensurePrivateDir } from '../os/private-path.js'
import { ApiConnection, type ConnectionLimits, type Failure } from './api-connection.js'
import { ApiHandler, type ApiRequest, type ApiResponse } from './api-handler.js'

export interface ApiServerOptions {
  socketPath: string
  log: Logger
  /** The largest request body taken; larger ones get 413. Room for a largest secret in JSON. */
  maxBodyBytes?: number
}

export interface ApiServer {
  socketPath: string
  close(): Promise<void>
}

export const DEFAULT_MAX_BODY_BYTES = 2 * DEFAULT_MAX_VALUE_SIZE + 64 * 1024

/**
 * Connections open at once: plenty for one user's tools, and far below the descriptor limit (1024
 * at the least on the systems secretfs runs on), which the store and the mount need too.
 */
export const MAX_CONNECTIONS = 256

/** Connections the kernel queues for the daemon to accept (node's default is 511). */
const LISTEN_BACKLOG = 4096
const LIMITS: ConnectionLimits = { headMs: 10_000, bodyMs: 30_000, sendMs: 30_000, pipelined: 16 }

export async function startApiServer(core: Core, options: ApiServerOptions): Promise<ApiServer> {
  const { socketPath, log } = options
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  await prepareSocketDir(dirname(socketPath))
  await removeStaleSocket(socketPath)
  const handler = new ApiHandler(core, log)

  // Never listens itself: it parses what each ApiConnection gives it, which keeps its own timers.
  const http1 = http.createServer({ requireHostHeader: false })
  /** The request's connection and method, once its head is matched to the one the framer read. */
  const admit = (req: http.IncomingMessage, res: http.ServerResponse) => {
    // Every socket this parser is given is an ApiConnection.
    const connection = req.socket as unknown as ApiConnection
    const framed = connection.takeHead()
    const method = framed?.method === 'LIST' && req.method === 'GET' ? 'LIST' : req.method
    if (!framed || framed.method !== method || framed.target !== req.url) {
      log.error('api: the request framing and the HTTP parser disagree; closing the connection')
      connection.close()
      return undefined
    }
    connection.track(req, res)
    return { connection, method }
  }
  http1.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const admitted = admit(req, res)
    if (admitted) void serve(handler, admitted.connection, admitted.method, req, res, maxBody, log)
  })
  // Answered here rather than by node, so that every request the framer read is matched.
  http1.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (admit(req, res)) send(res, { status: 417, body: { errors: ['the only Expect taken is 100-continue'] } }, true)
  })
  http1.on('clientError', (err: Error & { code?: string }, socket: ApiConnection) => {
    if (err.code === 'HPE_HEADER_OVERFLOW') socket.fail({ status: 431, message: 'the request headers are too large' })
    else if (err.code === 'ECONNRESET' || socket.destroyed) socket.close()
    else {
      log.warn('api: refused a malformed HTTP request', new SecretfsError('invalid', err.code ?? 'parse error'))
      socket.fail({ status: 400, message: 'malformed HTTP request' })
    }
  })

  // Oldest first: when full, the oldest connection with no request being answered makes room.
  const connections = new Set<ApiConnection>()
  let warned = false
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    if (connections.size >= MAX_CONNECTIONS) {
      const idle = [...connections].find((c) => c.idle)
      if (!warned) log.warn(`api: ${MAX_CONNECTIONS} connections are open; closing idle ones to admit new ones`)
      warned = true
      if (!idle) {
        socket.destroy()
        return
      }
      connections.delete(idle)
      idle.close()
    } else if (connections.size < MAX_CONNECTIONS / 2) {
      warned = false
    }
    const connection = new ApiConnection(socket, LIMITS, encodeFailure)
    connections.add(connection)
    // The socket, not the connection: it may outlive it by the flush of a last error.
    socket.on('close', () => connections.delete(connection))
    http1.emit('connection', connection)
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    // A deep backlog: under a flood of connections, a client waits in the kernel's queue for the
    // daemon to reach it (and evict an idle one) instead of being refused with EAGAIN. The kernel
    // caps it at net.core.somaxconn.
    server.listen({ path: socketPath, backlog: LISTEN_BACKLOG }, () => {
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
        for (const c of connections) c.close()
      })),
  }
}

async function serve(
  handler: ApiHandler,
  connection: ApiConnection,
  method: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  maxBody: number,
  log: Logger,
): Promise<void> {
  const turn = connection.nextTurn()
  let body: Buffer | undefined
  try {
    body = await readBody(req, maxBody)
    await turn.ready
    // A connection that failed after this request began owes it nothing: it is not run.
    if (!connection.mayRun(req)) return
    if (body === undefined) {
      send(res, tooLarge(maxBody), true)
      return
    }
    const request: ApiRequest = { method, target: req.url ?? '/', body }
    if (req.headers['content-type'] !== undefined) request.contentType = req.headers['content-type']
    send(res, await handler.handle(request))
  } catch (e) {
    // A connection closed while its request was being read: nobody to answer.
    if (connection.destroyed) return
    log.error('api: failed to answer a request', e)
    if (!res.headersSent) send(res, { status: 500, body: { errors: ['internal error'] } }, true)
    else res.destroy()
  } finally {
    turn.done()
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
  // Once sent, a response's bytes (a secret, perhaps) are zeroed rather than left to the collector.
  res.end(bytes, () => bytes?.fill(0))
}

/** A failed connection's last answer, written straight to its socket. */
function encodeFailure(failure: Failure): Buffer {
  const bytes = Buffer.from(JSON.stringify({ errors: [failure.message] }) + '\n')
  const head = [
    `HTTP/1.1 ${failure.status} ${http.STATUS_CODES[failure.status] ?? ''}`,
    'Content-Type: application/json',
    'Cache-Control: no-store',
    `Content-Length: ${bytes.length}`,
    'Connection: close',
  ]
  return Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n'), bytes])
}

/** Creates the socket's directory 0700, or checks that an existing one is ours alone. */
async function prepareSocketDir(dir: string): Promise<void> {
  try {
    await ensurePrivateDir(dir)
  } catch (e) {
    if (!(e instanceof NotPrivate)) throw e
    throw invalid(`the socket's directory ${e.message}${e.problem === 'mode' ? '; make it 0700' : ''}`)
  }
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
