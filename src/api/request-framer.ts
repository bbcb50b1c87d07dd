// Finds where each HTTP/1.1 request on a connection begins and ends, strictly, ahead of node's
// parser: so that Vault's LIST, a method that parser refuses, reaches it as GET, and so that the
// connection knows whether its client is sending a head, a body, or nothing. Framing it does not
// understand exactly (two lengths, chunk extensions, upgrades) is refused, never guessed at.

/** Node's default limit on a request's head; the parser would refuse a larger one anyway. */
export const MAX_HEAD_BYTES = 16 * 1024

/** Nothing of a next request yet; part of its head; its body. */
export type FramerPhase = 'idle' | 'head' | 'body'

export interface FramedHead {
  /** As the client sent it: LIST, not the GET the parser is given. */
  method: string
  target: string
}

export interface FramerSink {
  /** A request's head is complete; the bytes given to `data` next carry it. */
  head(head: FramedHead): void
  /** Bytes for the HTTP parser, in order: heads (LIST as GET) and bodies, as sent. */
  data(bytes: Buffer): void
  /** The request is complete. Returns false to stop reading before the next one. */
  end(): boolean
}

/** The client sent something this server does not take; `status` is the answer to give. */
export class FramingError extends Error {
  constructor(
    readonly status: 400 | 431,
    message: string,
  ) {
    super(message)
    this.name = 'FramingError'
  }
}

const CRLF_CRLF = Buffer.from('\r\n\r\n')
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
const REQUEST_LINE = new RegExp(`^(${TOKEN}) ([\\x21-\\x7e]+) HTTP/1\\.([01])$`)
const HEADER_LINE = new RegExp(`^(${TOKEN}):[ \\t]*(.*?)[ \\t]*$`)
// Field values may hold tabs and visible characters, never other controls.
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/
/** Chunk sizes up to 2^52: well past any body this server reads, exact in a JS number. */
const CHUNK_SIZE = /^0*[0-9A-Fa-f]{1,13}$/

const malformed = (why: string) => new FramingError(400, `malformed HTTP request: ${why}`)

type BodyState =
  | { kind: 'length'; left: number }
  | { kind: 'chunk-size'; line: string }
  | { kind: 'chunk-data'; left: number }
  | { kind: 'chunk-end'; seen: number }
  | { kind: 'last-chunk-end'; seen: number }

export class RequestFramer {
  #head: Buffer | undefined
  #headLength = 0
  #body: BodyState | undefined
  #failed = false
  /** The request being read closes the connection (Connection: close, or HTTP/1.0). */
  #last = false
  /** A last request was read: whatever follows is dropped, as the parser would never answer it. */
  #closed = false

  get phase(): FramerPhase {
    return this.#body ? 'body' : this.#headLength > 0 ? 'head' : 'idle'
  }

  /**
   * Reads `chunk`, telling `sink` what it finds; returns how many bytes it used, fewer than all when
   * `sink.end()` asked it to stop. Throws a FramingError, after which it reads nothing more.
   */
  feed(chunk: Buffer, sink: FramerSink): number {
    if (this.#failed) throw malformed('the connection already failed')
    try {
      return this.#feed(chunk, sink)
    } catch (e) {
      this.#failed = true
      this.#head?.fill(0)
      throw e
    }
  }

  #feed(chunk: Buffer, sink: FramerSink): number {
    let pos = 0
    while (pos < chunk.length) {
      if (this.#closed) {
        chunk.fill(0, pos)
        return chunk.length
      }
      if (this.#body) {
        const start = pos
        pos = this.#readBody(chunk, pos)
        if (pos > start) sink.data(chunk.subarray(start, pos))
        if (this.#body) continue
        if (!this.#ended(sink)) return pos
        continue
      }
      // Blank lines before a request line are allowed (RFC 9112 2.2) and dropped here.
      if (this.#headLength === 0 && (chunk[pos] === 0x0d || chunk[pos] === 0x0a)) {
        pos++
        continue
      }
      pos = this.#readHead(chunk, pos, sink)
      if (!this.#body && this.#headLength === 0 && !this.#ended(sink)) return pos
    }
    return pos
  }

  #ended(sink: FramerSink): boolean {
    this.#closed = this.#last
    return sink.end()
  }

  /** Takes head bytes from `chunk` at `pos`; once the head is whole, hands it on. Returns the new position. */
  #readHead(chunk: Buffer, pos: number, sink: FramerSink): number {
    this.#head ??= Buffer.alloc(MAX_HEAD_BYTES)
    const searchFrom = Math.max(0, this.#headLength - 3)
    const taken = Math.min(chunk.length - pos, MAX_HEAD_BYTES - this.#headLength)
    chunk.copy(this.#head, this.#headLength, pos, pos + taken)
    const copied = this.#headLength + taken
    const end = this.#head.subarray(0, copied).indexOf(CRLF_CRLF, searchFrom)
    // A line must end in CRLF: a bare LF would end a head for some parsers and not for this one.
    for (let i = Math.max(1, this.#headLength); i < (end < 0 ? copied : end); i++) {
      if ((this.#head[i] === 0x0a) !== (this.#head[i - 1] === 0x0d)) throw malformed('a line does not end in CRLF')
    }
    this.#headLength = copied
    if (end < 0) {
      if (this.#headLength === MAX_HEAD_BYTES) throw new FramingError(431, 'the request headers are too large')
      return pos + taken
    }
    const headLength = end + CRLF_CRLF.length
    const used = pos + taken - (this.#headLength - headLength)
    const head = this.#head.subarray(0, headLength)
    const framed = this.#parseHead(head.toString('latin1', 0, end))
    sink.head(framed)
    // The parser is given LIST as GET: the same framing, a method it knows.
    sink.data(
      framed.method === 'LIST' ? Buffer.concat([Buffer.from('GET'), head.subarray('LIST'.length)]) : Buffer.from(head),
    )
    // The head names a secret's path; it goes no further than the parser's copy.
    this.#head.fill(0, 0, this.#headLength)
    this.#headLength = 0
    return used
  }

  /** Checks a head's request line and framing headers; sets the body state it calls for. */
  #parseHead(text: string): FramedHead {
    const [requestLine = '', ...fields] = text.split('\r\n')
    const request = REQUEST_LINE.exec(requestLine)
    if (!request) throw malformed('the request line is not METHOD TARGET HTTP/1.x')
    const [, method = '', target = '', minor] = request
    if (method === 'CONNECT') throw malformed('CONNECT is not supported')
    let length: string | undefined
    let chunked = false
    const connection: string[] = []
    for (const field of fields) {
      const header = HEADER_LINE.exec(field)
      if (!header || CONTROL.test(field)) throw malformed('a header line is not NAME: VALUE')
      const name = header[1]!.toLowerCase()
      const value = header[2]!
      if (name === 'content-length') {
        if (length !== undefined) throw malformed('more than one Content-Length')
        if (!/^\d{1,15}$/.test(value)) throw malformed('Content-Length is not a number')
        length = value
      } else if (name === 'transfer-encoding') {
        if (chunked || value.toLowerCase() !== 'chunked' || minor === '0')
          throw malformed('the only Transfer-Encoding taken is chunked, once, in HTTP/1.1')
        chunked = true
      } else if (name === 'upgrade') {
        throw malformed('protocol upgrades are not supported')
      } else if (name === 'connection') {
        connection.push(
          ...value
            .toLowerCase()
            .split(',')
            .map((token) => token.trim()),
        )
      }
    }
    this.#last = minor === '0' ? !connection.includes('keep-alive') : connection.includes('close')
    if (chunked && length !== undefined) throw malformed('both Content-Length and Transfer-Encoding')
    if (chunked) this.#body = { kind: 'chunk-size', line: '' }
    else if (length !== undefined && Number(length) > 0) this.#body = { kind: 'length', left: Number(length) }
    return { method, target }
  }

  /** Consumes body bytes from `chunk` at `pos`; returns the new position, clearing #body at the end. */
  #readBody(chunk: Buffer, pos: number): number {
    while (pos < chunk.length && this.#body) {
      const body = this.#body
      switch (body.kind) {
        case 'length':
        case 'chunk-data': {
          const n = Math.min(body.left, chunk.length - pos)
          body.left -= n
          pos += n
          if (body.left === 0) this.#body = body.kind === 'length' ? undefined : { kind: 'chunk-end', seen: 0 }
          break
        }
        case 'chunk-size': {
          const b = chunk[pos++]!
          if (b !== 0x0a) {
            if (body.line.length > 16) throw malformed('a chunk size line is too long')
            body.line += String.fromCharCode(b)
            break
          }
          const line = body.line
          if (!line.endsWith('\r')) throw malformed('a chunk size line does not end in CRLF')
          const size = line.slice(0, -1)
          if (size.includes(';')) throw malformed('chunk extensions are not supported')
          if (!CHUNK_SIZE.test(size)) throw malformed('a chunk size is not hexadecimal')
          const left = parseInt(size, 16)
          this.#body = left === 0 ? { kind: 'last-chunk-end', seen: 0 } : { kind: 'chunk-data', left }
          break
        }
        case 'chunk-end':
        case 'last-chunk-end': {
          if (chunk[pos++] !== CRLF_CRLF[body.seen]) {
            throw malformed(
              body.kind === 'chunk-end' ? 'a chunk does not end in CRLF' : 'chunked trailers are not supported',
            )
          }
          if (++body.seen < 2) break
          this.#body = body.kind === 'chunk-end' ? { kind: 'chunk-size', line: '' } : undefined
          break
        }
      }
    }
    return pos
  }
}
