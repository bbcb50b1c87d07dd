// One client connection of the control API, standing between its socket and node's HTTP parser:
// it frames the requests (LIST reaches the parser as GET), cuts a client that is slow to send a
// request or to read an answer, reads only a few requests ahead of the answers, and, when the
// connection must fail, answers what it owes in order before the error.

import type http from 'node:http'
import type net from 'node:net'
import { Duplex } from 'node:stream'
import { FramingError, RequestFramer, type FramedHead } from './request-framer.js'

export interface ConnectionLimits {
  /** How long a client may take to send a request's head, from when it may send one. */
  headMs: number
  /** How long it may take to send a body, once the head is in. */
  bodyMs: number
  /** How long an answer may wait for the client to read it. */
  sendMs: number
  /** How many requests are read ahead of their answers. */
  pipelined: number
}

/** What to answer when a connection fails: an HTTP status and the error's message. */
export interface Failure {
  status: number
  message: string
}

export class ApiConnection extends Duplex {
  readonly #socket: net.Socket
  readonly #limits: ConnectionLimits
  readonly #encode: (failure: Failure) => Buffer
  readonly #framer = new RequestFramer()
  /** Heads framed, not yet matched to the parser's requests. */
  readonly #heads: FramedHead[] = []
  /** Requests the parser reported whose answers have not closed yet, oldest first. */
  readonly #requests = new Map<http.IncomingMessage, http.ServerResponse>()
  /** Bytes read but not framed yet: the client is ahead of the answers. */
  #held: Buffer | undefined
  /**
   * Bytes handed to the parser, zeroed once it has read them all: they are views of the socket's
   * reads, which would otherwise go back to the allocator with a request's secret in them.
   */
  readonly #handedOn: Buffer[] = []
  #parserFull = false
  #turns = Promise.resolve()
  #clientEnded = false
  #timer: NodeJS.Timeout | undefined
  #phase = this.#framer.phase
  /** Once failing: the requests that are still answered before the error, and the error. */
  #owed: Set<http.IncomingMessage> | undefined
  #failure: Failure | undefined
  /** Set once the error is sent: the socket outlives this stream until it is flushed. */
  #detached = false

  constructor(socket: net.Socket, limits: ConnectionLimits, encode: (failure: Failure) => Buffer) {
    super({ allowHalfOpen: true })
    this.#socket = socket
    this.#limits = limits
    this.#encode = encode
    socket.on('data', (chunk: Buffer) => this.#input(chunk))
    socket.on('end', () => {
      this.#clientEnded = true
      this.#endIfDone()
    })
    socket.on('error', () => this.destroy())
    socket.on('close', () => this.destroy())
    this.#arm()
  }

  /** The method and target of the parser's next request, as the client sent them. */
  takeHead(): FramedHead | undefined {
    return this.#heads.shift()
  }

  /**
   * The turn of the request the parser reported last: `ready` once every request before it on this
   * connection is answered, as a client that pipelines them expects; call `done` when answered.
   */
  nextTurn(): { ready: Promise<void>; done: () => void } {
    const ready = this.#turns
    let done!: () => void
    this.#turns = ready.then(() => new Promise<void>((resolve) => (done = resolve)))
    return { ready, done: () => void ready.then(() => done()) }
  }

  /** Follows a request until its answer closes. */
  track(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.#requests.set(req, res)
    // Node emits errors of an answer whose connection is gone; that connection's own close says it.
    res.on('error', () => {})
    res.on('close', () => {
      this.#zeroConsumed()
      this.#requests.delete(req)
      this.#owed?.delete(req)
      this.#arm()
      if (this.#owed) this.#sendFailureWhenOwedDone()
      else this.#frame()
    })
  }

  /** Whether no request is being answered on it, so that closing it loses no answer. */
  get idle(): boolean {
    if (this.#detached) return true
    for (const req of this.#requests.keys()) if (req.complete) return false
    return true
  }

  /** Whether `req` is still to be run and answered: not once the connection is failing after it. */
  mayRun(req: http.IncomingMessage): boolean {
    return !this.destroyed && (this.#owed === undefined || this.#owed.has(req))
  }

  /**
   * Stops reading; once the answers to requests already read in full are sent, sends `failure`
   * and closes. A request not read in full is neither run nor answered.
   */
  fail(failure: Failure): void {
    if (this.#owed || this.destroyed) return
    this.#owed = new Set([...this.#requests.keys()].filter((req) => req.complete))
    this.#held = undefined
    this.#failure = failure
    this.#flow()
    this.#sendFailureWhenOwedDone()
  }

  /** Closes the connection now, whatever it is doing. */
  close(): void {
    this.destroy()
    this.#socket.destroy()
  }

  #sendFailureWhenOwedDone(): void {
    if (this.#owed!.size > 0 || this.#detached) return
    this.#detached = true
    clearTimeout(this.#timer)
    // No more of the parser's writes reach the socket: the error is the last thing on it.
    this.destroy()
    // Ended already, after an answer that closes the connection: nothing more may follow it.
    if (!this.#socket.writable) return
    this.#socket.write(this.#encode(this.#failure!))
    this.#endSocket()
  }

  /** Ends the socket once what was written is flushed, or after sendMs if the client does not read. */
  #endSocket(): void {
    const socket = this.#socket
    const timer = setTimeout(() => socket.destroy(), this.#limits.sendMs)
    socket.once('close', () => clearTimeout(timer))
    socket.destroySoon()
  }

  #input(chunk: Buffer): void {
    if (this.#owed || this.destroyed) return
    if (this.#held) {
      const held = this.#held
      this.#held = Buffer.concat([held, chunk])
      // Either may hold part of a body; only the copy goes on.
      held.fill(0)
      chunk.fill(0)
    } else {
      this.#held = chunk
    }
    this.#frame()
  }

  /** Frames held bytes for the parser, up to the limit of requests read ahead. */
  #frame(): void {
    const held = this.#held
    if (held && !this.#owed && !this.#parserFull) {
      this.#held = undefined
      let progressed = false
      try {
        const used = this.#framer.feed(held, {
          head: (head) => {
            this.#heads.push(head)
            progressed = true
          },
          data: (bytes) => {
            this.#handedOn.push(bytes)
            if (!this.push(bytes)) this.#parserFull = true
            this.#zeroConsumed()
          },
          end: () => {
            progressed = true
            return this.#requests.size < this.#limits.pipelined
          },
        })
        if (used < held.length) this.#held = held.subarray(used)
      } catch (e) {
        if (!(e instanceof FramingError)) throw e
        this.fail({ status: e.status, message: e.message })
        return
      }
      // The deadline moves when the client gets somewhere, never for a mere trickle of bytes.
      if (progressed || this.#framer.phase !== this.#phase) this.#arm()
    }
    this.#flow()
    this.#endIfDone()
  }

  /** Zeroes what was handed to the parser once it has read everything (nothing is buffered here). */
  #zeroConsumed(): void {
    if (this.readableLength > 0) return
    for (const bytes of this.#handedOn.splice(0)) bytes.fill(0)
  }

  /** Reads from the socket only while the parser takes more and few requests wait for answers. */
  #flow(): void {
    const read = !this.#owed && !this.#parserFull && this.#held === undefined
    if (read) this.#socket.resume()
    else this.#socket.pause()
  }

  /** The client has finished sending: once every answer is out, the parser is told so. */
  #endIfDone(): void {
    if (!this.#clientEnded || this.#owed || this.#held || this.#requests.size > 0) return
    if (this.#framer.phase !== 'idle') this.fail({ status: 400, message: 'malformed HTTP request: it ends early' })
    else this.push(null)
  }

  /** The deadline for the client's next step: a head, a body; none while it waits for answers. */
  #arm(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#phase = this.#framer.phase
    if (this.#owed || this.#detached) return
    const phase = this.#phase
    if (phase === 'idle' && this.#requests.size > 0) return
    const ms = phase === 'body' ? this.#limits.bodyMs : this.#limits.headMs
    this.#timer = setTimeout(() => {
      // An idle connection is closed quietly, as an HTTP server does with keep-alive.
      if (phase === 'idle') this.destroy()
      else this.fail({ status: 408, message: 'the request did not arrive in time' })
    }, ms)
  }

  override _read(): void {
    if (!this.#parserFull) return
    this.#parserFull = false
    this.#frame()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    // A client that does not read its answers is cut, so that its connection does not stay forever.
    const timer = setTimeout(() => this.destroy(), this.#limits.sendMs)
    this.#socket.write(chunk, (e) => {
      clearTimeout(timer)
      done(e)
    })
  }

  override _final(done: (error?: Error | null) => void): void {
    this.#endSocket()
    done()
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    clearTimeout(this.#timer)
    for (const bytes of this.#handedOn.splice(0)) bytes.fill(0)
    this.#held?.fill(0)
    if (!this.#detached) this.#socket.destroy()
    done(error)
  }
}
