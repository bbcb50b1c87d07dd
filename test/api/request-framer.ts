import t from 'tap'
import { MAX_HEAD_BYTES, RequestFramer, type FramedHead } from '../../src/api/request-framer.js'

/** Feeds `input` in pieces of `step` bytes (all at once by default); returns what the sink saw. */
function frame(input: string | Buffer, step = Infinity) {
  const framer = new RequestFramer()
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1')
  const heads: FramedHead[] = []
  const out: Buffer[] = []
  let ends = 0
  const sink = {
    head: (h: FramedHead) => heads.push(h),
    data: (b: Buffer) => out.push(Buffer.from(b)),
    end: () => (ends++, true),
  }
  for (let i = 0; i < bytes.length; i += step) framer.feed(bytes.subarray(i, Math.min(bytes.length, i + step)), sink)
  return { heads, parser: Buffer.concat(out).toString('latin1'), ends, phase: framer.phase }
}

const PIPELINE =
  '\r\nGET /v1/a HTTP/1.1\r\nHost: x\r\n\r\n' +
  'LIST /v1/secret/ HTTP/1.1\r\nHost: x\r\n\r\n' +
  'PUT /v1/b HTTP/1.1\r\ncontent-length:  5 \r\n\r\nLIST ' +
  'POST /v1/c HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nab\n\r\n00A\r\n0123456789\r\n0\r\n\r\n' +
  'DELETE /v1/d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'

t.test('requests found whole, however the bytes are cut; LIST given to the parser as GET', async (t) => {
  const whole = frame(PIPELINE)
  t.same(whole.heads, [
    { method: 'GET', target: '/v1/a' },
    { method: 'LIST', target: '/v1/secret/' },
    { method: 'PUT', target: '/v1/b' },
    { method: 'POST', target: '/v1/c' },
    { method: 'DELETE', target: '/v1/d' },
  ])
  t.equal(whole.ends, 5)
  t.equal(whole.phase, 'idle')
  t.equal(
    whole.parser,
    PIPELINE.slice(2).replace('LIST /v1/secret/', 'GET /v1/secret/'),
    'the parser gets every byte but the blank line before the first request, LIST rewritten; a body is left alone',
  )
  for (const step of [1, 2, 3, 7, 64]) t.same(frame(PIPELINE, step), whole, `in pieces of ${step}`)
})

t.test('the phase: idle, head, body, idle', async (t) => {
  const framer = new RequestFramer()
  const sink = { head: () => {}, data: () => {}, end: () => true }
  t.equal(framer.phase, 'idle')
  framer.feed(Buffer.from('PUT /v1/a HTTP/1.1\r\nContent-Len'), sink)
  t.equal(framer.phase, 'head')
  framer.feed(Buffer.from('gth: 4\r\n\r\nab'), sink)
  t.equal(framer.phase, 'body')
  framer.feed(Buffer.from('cd'), sink)
  t.equal(framer.phase, 'idle')
})

t.test('a sink that asks to stop gets the bytes left over to feed again', async (t) => {
  const framer = new RequestFramer()
  const heads: string[] = []
  const sink = { head: (h: FramedHead) => heads.push(h.target), data: () => {}, end: () => false }
  const bytes = Buffer.from('GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n')
  const used = framer.feed(bytes, sink)
  t.equal(used, 19)
  t.same(heads, ['/1'])
  t.equal(framer.feed(bytes.subarray(used), sink), 19)
  t.same(heads, ['/1', '/2'])
})

t.test('after a request that closes the connection, nothing more reaches the parser; it is zeroed', async (t) => {
  for (const close of ['GET /a HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n', 'GET /a HTTP/1.0\r\n\r\n']) {
    const framer = new RequestFramer()
    const out: string[] = []
    const sink = { head: () => {}, data: (b: Buffer) => out.push(b.toString()), end: () => true }
    const bytes = Buffer.from(close + 'PUT /b HTTP/1.1\r\nContent-Length: 6\r\n\r\nsecret')
    t.equal(framer.feed(bytes, sink), bytes.length)
    t.same(out, [close])
    t.ok(
      bytes.subarray(close.length).every((b) => b === 0),
      'what follows is zeroed',
    )
  }
})

t.test('framing that is ambiguous or unsupported is refused with a clear message', async (t) => {
  const refused = (input: string, status: number, message: RegExp) =>
    t.throws(() => frame(input), { name: 'FramingError', status, message })
  const headers = (h: string) => `PUT /v1/a HTTP/1.1\r\n${h}\r\n\r\n`
  refused(
    headers('Content-Length: 1\r\nContent-Length: 1'),
    400,
    /^malformed HTTP request: more than one Content-Length$/,
  )
  refused(headers('Content-Length: 1\r\nTransfer-Encoding: chunked'), 400, /both Content-Length and Transfer-Encoding/)
  refused(headers('Transfer-Encoding: gzip, chunked'), 400, /the only Transfer-Encoding taken is chunked/)
  refused(headers('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked'), 400, /only Transfer-Encoding/)
  refused('PUT /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /in HTTP\/1\.1/)
  refused(headers('Content-Length: -1'), 400, /Content-Length is not a number/)
  refused(headers('Content-Length: 1 2'), 400, /Content-Length is not a number/)
  refused(headers('Upgrade: h2c\r\nConnection: Upgrade'), 400, /protocol upgrades are not supported/)
  refused('CONNECT host:1 HTTP/1.1\r\n\r\n', 400, /CONNECT is not supported/)
  refused('PRI * HTTP/2.0\r\n\r\n', 400, /the request line is not METHOD TARGET HTTP\/1\.x/)
  refused('GET /a b HTTP/1.1\r\n\r\n', 400, /the request line/)
  refused(headers('X-A: 1\r\n folded'), 400, /a header line is not NAME: VALUE/)
  refused(headers('X-A : 1'), 400, /a header line is not NAME: VALUE/)
  refused(headers('X-A: a\x01b'), 400, /a header line is not NAME: VALUE/)
  refused('GET /a HTTP/1.1\nHost: x\n\n', 400, /a line does not end in CRLF/)
  refused('GET /a HTTP/1.1\r\nHost: x\rY\r\n\r\n', 400, /a line does not end in CRLF/)
  const chunked = (body: string) => headers('Transfer-Encoding: chunked') + body
  refused(chunked('1;name=value\r\nx\r\n0\r\n\r\n'), 400, /chunk extensions are not supported/)
  refused(chunked('1\r\nx\r\n0\r\nTrailer: x\r\n\r\n'), 400, /chunked trailers are not supported/)
  refused(chunked('1\r\nxy\r\n0\r\n\r\n'), 400, /a chunk does not end in CRLF/)
  refused(chunked('g\r\n'), 400, /a chunk size is not hexadecimal/)
  refused(chunked('1\n'), 400, /a chunk size line does not end in CRLF/)
  refused(chunked('10000000000000\r\n'), 400, /a chunk size is not hexadecimal/)
  refused(chunked('0'.repeat(20) + '1\r\n'), 400, /a chunk size line is too long/)
  refused('GET /' + 'a'.repeat(MAX_HEAD_BYTES) + ' HTTP/1.1\r\n\r\n', 431, /^the request headers are too large$/)
  t.throws(
    () => {
      const framer = new RequestFramer()
      const sink = { head: () => {}, data: () => {}, end: () => true }
      t.throws(() => framer.feed(Buffer.from('GET /a HTTP/1.1\nX'), sink))
      framer.feed(Buffer.from('GET /a HTTP/1.1\r\n\r\n'), sink)
    },
    { name: 'FramingError', message: /already failed/ },
    'a framer that failed reads nothing more',
  )
})
