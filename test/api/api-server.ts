import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import net from 'node:net'
import t from 'tap'
import { MAX_CONNECTIONS, startApiServer } from '../../src/api/api-server.js'
import { Core } from '../../src/core/core.js'
import { silentLogger } from '../../src/log.js'
import { coreWith, parseRaw, request, socketDir, startTestApi } from '../helpers/api-fixture.js'
import { runCli } from '../helpers/cli-run.js'
import { startDaemon, tempDir } from '../helpers/daemon.js'

const curl = (...args: string[]): Promise<{ code: number; stdout: string }> =>
  new Promise((resolve) =>
    execFile('curl', ['-s', '-w', '\n%{http_code}', ...args], (e, stdout) => resolve({ code: e ? 1 : 0, stdout })),
  )
const JSON_TYPE = { 'Content-Type': 'application/json' }

t.test('curl --unix-socket SOCK http://localhost/v1/sys/mounts works, Vault-shaped', async (t) => {
  const api = await startTestApi(t)
  const r = await curl('--unix-socket', api.socketPath, 'http://localhost/v1/sys/mounts')
  const [body, status] = r.stdout.split('\n').filter(Boolean)
  t.equal(status, '200')
  const json = JSON.parse(body!)
  t.same(Object.keys(json.data).sort(), ['secret/', 'sys/'])
  t.match(json.data['secret/'], {
    type: 'generic',
    description: 'generic secret storage',
    config: { default_lease_ttl: 0, max_lease_ttl: 0 },
  })
  t.same(json['secret/'], json.data['secret/'], 'also at the top level, as Vault gives it')
})

t.test('the socket is 0600 in a directory 0700 created for it', async (t) => {
  const api = await startTestApi(t)
  t.equal((await fs.stat(api.socketPath)).mode & 0o777, 0o600)
  t.equal((await fs.stat(path.dirname(api.socketPath))).mode & 0o777, 0o700)
})

t.test('the socket directory must be ours alone; a live socket is never taken over', async (t) => {
  const dir = await socketDir(t)
  const open = path.join(dir, 'open')
  await fs.mkdir(open, { mode: 0o755 })
  await fs.chmod(open, 0o755)
  const core = await Core.dev()
  t.teardown(() => core.close())
  await t.rejects(startApiServer(core, { socketPath: path.join(open, 's.sock'), log: silentLogger }), {
    kind: 'invalid',
    message: /open to other users/,
  })
  const notDir = path.join(dir, 'plain')
  await fs.writeFile(notDir, '')
  await t.rejects(startApiServer(core, { socketPath: path.join(notDir, 's.sock'), log: silentLogger }), {
    kind: 'invalid',
    message: `the socket's directory ${notDir} is not a directory`,
  })
  await t.rejects(startApiServer(core, { socketPath: path.join(notDir, 'sub', 's.sock'), log: silentLogger }), {
    kind: 'invalid',
    message: `the socket's directory ${path.join(notDir, 'sub')} cannot be made: a path above it is not a directory`,
  })
  t.equal(await fs.readFile(notDir, 'utf8'), '', 'the file in the way is left alone')

  const own = path.join(dir, 'own')
  const first = await startApiServer(core, { socketPath: path.join(own, 's.sock'), log: silentLogger })
  t.teardown(() => first.close())
  await t.rejects(startApiServer(core, { socketPath: first.socketPath, log: silentLogger }), {
    kind: 'busy',
    message: /already listening/,
  })
  const regular = path.join(own, 'regular')
  await fs.writeFile(regular, 'keep me')
  await t.rejects(startApiServer(core, { socketPath: regular, log: silentLogger }), { message: /not a socket/ })
  t.equal(await fs.readFile(regular, 'utf8'), 'keep me', 'a file in the way is left alone')
})

t.test('a stale socket (nobody listening) is replaced', async (t) => {
  const dir = path.join(await socketDir(t), 'run')
  await fs.mkdir(dir, { mode: 0o700 })
  const sock = path.join(dir, 's.sock')
  // A listener killed with SIGKILL leaves its socket file behind, as a crashed daemon does.
  const child = spawn(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`,
  ])
  await new Promise((r) => child.stdout.once('data', r))
  child.kill('SIGKILL')
  await new Promise((r) => child.once('exit', r))
  t.ok((await fs.lstat(sock)).isSocket(), 'the dead socket is still there')
  const api = await startTestApi(t, { socketPath: sock })
  t.equal((await api.request('GET', '/v1/sys/health')).status, 200)
})

t.test('secrets: write fields, read them back, list, delete', async (t) => {
  const api = await startTestApi(t)
  t.equal(
    (await api.request('PUT', '/v1/secret/team/db', '{"password":"hunter2","user":"app"}', JSON_TYPE)).status,
    204,
  )
  t.equal((await api.request('POST', '/v1/secret/team/api', '{"token":"t"}')).status, 204, 'POST, no content type')
  const read = await api.request('GET', '/v1/secret/team/db')
  t.equal(read.status, 200)
  t.same(read.json, { lease_id: '', lease_duration: 0, renewable: false, data: { password: 'hunter2', user: 'app' } })
  t.equal(
    Buffer.from((await api.core.read('secret/team/db')).value).toString(),
    '{"password":"hunter2","user":"app"}\n',
  )

  t.same((await api.request('GET', '/v1/secret/team?list=true')).json.data, { keys: ['api', 'db'] })
  t.same((await api.request('GET', '/v1/secret/?list=true')).json.data, { keys: ['team/'] })
  const list = parseRaw(await api.raw('LIST /v1/secret/team HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
  t.equal(list.status, 200, 'the LIST method')
  t.same(list.json.data, { keys: ['api', 'db'] })
  const curlList = await curl('--unix-socket', api.socketPath, '-X', 'LIST', 'http://localhost/v1/secret/team/')
  t.match(curlList.stdout, /"keys":\["api","db"\]/, 'curl -X LIST')

  t.equal((await api.request('DELETE', '/v1/secret/team/db')).status, 204)
  const gone = await api.request('GET', '/v1/secret/team/db')
  t.equal(gone.status, 404)
  t.same(gone.json, { errors: ['no such secret or directory'] })
  t.equal((await api.request('DELETE', '/v1/secret/team/db')).status, 404)
  t.equal((await api.request('GET', '/v1/secret/nothing?list=true')).status, 404)
})

t.test('values stored as written: raw bytes in and out, non-UTF-8 as base64', async (t) => {
  const api = await startTestApi(t)
  const bytes = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x41])
  t.equal(
    (await api.request('PUT', '/v1/secret/bin', bytes, { 'Content-Type': 'application/octet-stream' })).status,
    204,
  )
  t.same(Buffer.from((await api.core.read('secret/bin')).value), bytes)
  const rawRead = await api.request('GET', '/v1/secret/bin?format=raw')
  t.equal(rawRead.headers['content-type'], 'application/octet-stream')
  t.same(rawRead.body, bytes)
  const read = await api.request('GET', '/v1/secret/bin')
  t.equal(read.json.encoding, 'base64')
  t.same(Buffer.from(read.json.data.value, 'base64'), bytes)

  await api.core.write('secret/text', Buffer.from('plain text\n'))
  t.same((await api.request('GET', '/v1/secret/text')).json.data, { value: 'plain text\n' })
  t.notOk('encoding' in (await api.request('GET', '/v1/secret/text')).json)
})

t.test('mounts: mount, unmount, remount, and their failures', async (t) => {
  const api = await startTestApi(t)
  const mount = (p: string, body: unknown) => api.request('POST', `/v1/sys/mounts/${p}`, JSON.stringify(body))
  t.equal(
    (
      await mount('generic', {
        type: 'generic',
        description: 'd',
        config: { default_lease_ttl: '1h', max_lease_ttl: 7200 },
      })
    ).status,
    204,
  )
  t.match((await api.request('GET', '/v1/sys/mounts')).json.data['generic/'], {
    type: 'generic',
    description: 'd',
    config: { default_lease_ttl: 3600, max_lease_ttl: 7200 },
  })
  t.same(await mount('generic', { type: 'generic' }).then((r) => [r.status, r.json]), [
    409,
    { errors: ['a backend is already mounted at that path'] },
  ])
  t.equal((await mount('other', { type: 'nope' })).status, 400)
  t.match((await mount('other', { type: 'nope' })).json.errors[0], /unknown backend type; known types: generic/)
  t.equal((await mount('other', {})).status, 400, 'no type')
  t.equal((await mount('sys', { type: 'generic' })).status, 400, 'reserved')
  t.equal((await mount('other', { type: 'generic', config: { max_lease_ttl: 'soon' } })).status, 400)

  await api.core.write('generic/kept', Buffer.from('v'))
  t.equal((await api.request('POST', '/v1/sys/remount', '{"from":"generic","to":"moved"}')).status, 204)
  t.equal(Buffer.from((await api.core.read('moved/kept')).value).toString(), 'v', 'remount keeps the data')
  t.equal((await api.request('POST', '/v1/sys/remount', '{"from":"generic","to":"x"}')).status, 404)
  t.equal((await api.request('POST', '/v1/sys/remount', '{"from":"moved"}')).status, 400)
  t.equal((await api.request('POST', '/v1/sys/remount', '{"from":"moved","to":"secret"}')).status, 409)

  t.equal((await api.request('DELETE', '/v1/sys/mounts/moved')).status, 204)
  t.equal((await api.request('DELETE', '/v1/sys/mounts/moved')).status, 404)
  t.equal((await api.request('DELETE', '/v1/sys/mounts/sys')).status, 400)
  t.same(Object.keys((await api.request('GET', '/v1/sys/mounts')).json.data).sort(), ['secret/', 'sys/'])
})

t.test('malformed requests get a clear 4xx and change nothing', async (t) => {
  const api = await startTestApi(t, { maxBodyBytes: 1024 })
  await api.core.write('secret/a', Buffer.from('before'))
  const unchanged = async () => {
    t.same(await api.core.list('secret/'), ['a'], 'nothing was created')
    t.equal(Buffer.from((await api.core.read('secret/a')).value).toString(), 'before', 'nothing was changed')
  }
  const bad = await api.request('PUT', '/v1/secret/a', '{"value": ')
  t.same([bad.status, bad.json], [400, { errors: ['the request body is not valid JSON'] }])
  t.equal((await api.request('PUT', '/v1/secret/a', '["x"]')).status, 400, 'not an object')
  t.equal((await api.request('PUT', '/v1/secret/a', '')).status, 400, 'empty body')

  const wrong = await api.request('PATCH', '/v1/secret/a', '{}')
  t.equal(wrong.status, 405)
  t.equal(wrong.headers.allow, 'GET, LIST, PUT, POST, DELETE')
  t.equal((await api.request('DELETE', '/v1/sys/mounts')).status, 405)
  t.equal((await api.request('GET', '/v1/sys/seal')).status, 405)

  for (const target of [
    '/v1/secret/../sys/x',
    '/v1/secret/./a',
    '/v1/secret/%2e%2e/a',
    '/v1/secret//a',
    '/v1/secret/a%00b',
    '/v1/secret/a%2Fb',
    '/v1/secret/%zz',
  ]) {
    const r = parseRaw(
      await api.raw(
        `PUT ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{"value":"x"}`,
      ),
    )
    t.equal(r.status, 400, `${target} is refused`)
    t.type(r.json.errors[0], 'string')
  }
  const nul = parseRaw(await api.raw('GET /v1/secret/a\0b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
  t.equal(nul.status, 400, 'a raw NUL byte in the request line')
  t.equal((await api.request('GET', '/v2/secret/a')).status, 404, 'outside /v1/')

  const big = await api.request('PUT', '/v1/secret/big', JSON.stringify({ value: 'x'.repeat(2000) }))
  t.equal(big.status, 413)
  t.match(big.json.errors[0], /larger than the limit of 1024 bytes/)
  const chunked = await api.request('PUT', '/v1/secret/big', undefined, { 'Transfer-Encoding': 'chunked' })
  t.equal(chunked.status, 400, 'an empty chunked body')
  await unchanged()
})

t.test('a request body is zeroed once answered, and what it wrote is intact', async (t) => {
  const api = await startTestApi(t)
  const bodies: Uint8Array[] = []
  const write = api.core.write.bind(api.core)
  api.core.write = (path, value) => {
    bodies.push(value)
    return write(path, value)
  }
  const value = Buffer.from('a value that must not linger in memory')
  const r = await api.request('PUT', '/v1/secret/raw', value, { 'Content-Type': 'application/octet-stream' })
  t.equal(r.status, 204)
  t.equal(bodies.length, 1)
  t.ok(
    bodies[0]!.every((b) => b === 0),
    'the body the server read is all zeros',
  )
  t.same(Buffer.from((await api.core.read('secret/raw')).value), value, 'the stored value is whole')
})

t.test('pipelined requests, LIST among them, each get their own answer, in order', async (t) => {
  const api = await startTestApi(t)
  const replies = parseReplies(
    await api.raw(
      'PUT /v1/secret/a HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{"v":"1"}' +
        'LIST /v1/secret/ HTTP/1.1\r\nHost: x\r\n\r\n' +
        'PUT /v1/secret/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"v"\r\n5\r\n:"2"}\r\n0\r\n\r\n' +
        'LIST /v1/secret HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /v1/secret/b HTTP/1.1\r\nHost: x\r\n\r\n' +
        'DELETE /v1/secret/a HTTP/1.1\r\nHost: x\r\n\r\n' +
        'LIST /v1/secret/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' +
        'DELETE /v1/secret/b HTTP/1.1\r\nHost: x\r\n\r\n',
    ),
  )
  t.same(
    replies.map((r) => [r.status, r.json?.data]),
    [
      [204, undefined],
      [200, { keys: ['a'] }],
      [204, undefined],
      [200, { keys: ['a', 'b'] }],
      [200, { v: '2' }],
      [204, undefined],
      [200, { keys: ['b'] }],
    ],
    'seven answers; nothing after Connection: close',
  )
  t.same(await api.core.list('secret/'), ['b'], 'the request after Connection: close was not run')
})

t.test('a hundred pipelined requests from a client that then half-closes: all answered, in order', async (t) => {
  const api = await startTestApi(t)
  let bytes = ''
  for (let i = 0; i < 100; i++)
    bytes += `PUT /v1/secret/n${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{"v":"${i % 10}"}`
  bytes += 'LIST /v1/secret/ HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/secret/n99 HTTP/1.1\r\nHost: x\r\nExpect: x\r\n\r\n'
  const socket = net.connect(api.socketPath)
  let out = ''
  socket.on('data', (d: Buffer) => (out += d.toString('latin1')))
  const ended = new Promise((resolve) => socket.on('end', resolve))
  socket.end(bytes)
  await ended
  const replies = parseReplies(out)
  t.equal(replies.length, 102)
  t.same(new Set(replies.slice(0, 100).map((r) => r.status)), new Set([204]))
  t.equal(replies[100]!.json.data.keys.length, 100, 'the LIST after them sees all hundred')
  t.same([replies[101]!.status, replies[101]!.json], [417, { errors: ['the only Expect taken is 100-continue'] }])
})

t.test('a LIST that arrives a few bytes at a time, after a request still being answered', async (t) => {
  const api = await startTestApi(t)
  await api.core.write('secret/x', Buffer.from('{"v":"x"}'))
  const bytes =
    'GET /v1/secret/x HTTP/1.1\r\nHost: x\r\n\r\nLIST /v1/secret/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
  const socket = net.connect(api.socketPath)
  let out = ''
  socket.on('data', (d: Buffer) => (out += d.toString('latin1')))
  const ended = new Promise((resolve) => socket.on('end', resolve))
  for (let i = 0; i < bytes.length; i += 3) {
    await new Promise<void>((resolve) => socket.write(bytes.slice(i, i + 3), () => resolve()))
    await new Promise((resolve) => setImmediate(resolve))
  }
  await ended
  t.same(
    parseReplies(out).map((r) => [r.status, r.json?.data]),
    [
      [200, { v: 'x' }],
      [200, { keys: ['x'] }],
    ],
  )
})

t.test('a malformed request in a pipeline: the ones before it answered, then a 400, then nothing', async (t) => {
  const api = await startTestApi(t)
  const replies = parseReplies(
    await api.raw(
      'PUT /v1/secret/a HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{"v":"1"}' +
        'LIST /v1/secret/ HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /v1/secret/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab' +
        'DELETE /v1/secret/a HTTP/1.1\r\nHost: x\r\n\r\n',
    ),
  )
  t.same(
    replies.map((r) => [r.status, r.json?.data ?? r.json?.errors]),
    [
      [204, undefined],
      [200, { keys: ['a'] }],
      [400, ['malformed HTTP request: more than one Content-Length']],
    ],
  )
  t.same(await api.core.list('secret/'), ['a'], 'nothing after the malformed request ran')
  for (const [bytes, message] of <[string, string][]>[
    ['PUT /v1/secret/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=1\r\nx\r\n0\r\n\r\n', 'chunk'],
    ['PUT /v1/secret/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'Transfer-Encoding'],
    ['PUT /v1/secret/a HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'both'],
    ['GET /v1/secret/a HTTP/1.1\nHost: x\n\n', 'malformed'],
  ]) {
    const r = parseRaw(await api.raw(bytes))
    t.equal(r.status, 400, message)
    t.match(r.json.errors[0], /^malformed HTTP request/)
  }
  t.equal(Buffer.from((await api.core.read('secret/a')).value).toString(), '{"v":"1"}\n', 'still as written first')
})

// A daemon with the common limit of 1024 descriptors, and more idle connections than that.
const FLOOD = 1100
const ourLimit = Number(/^Max open files +(\d+)/m.exec(await fs.readFile('/proc/self/limits', 'utf8'))?.[1])
const floodSkip = ourLimit < FLOOD + 500 && `it needs ${FLOOD + 500} descriptors; the limit here is ${ourLimit}`

t.test(
  'a flood of idle and slow connections does not lock out seal-status and seal',
  { skip: floodSkip },
  async (t) => {
    // A real store: a dev server refuses to seal.
    const dir = await tempDir(t)
    await fs.writeFile(path.join(dir, 'key'), randomBytes(32), { mode: 0o600 })
    const args = ['--data', path.join(dir, 'data'), '--key-file', path.join(dir, 'key')]
    const d = await startDaemon(t, { args, mountpoint: false, runThrough: ['prlimit', '--nofile=1024:1024'] })
    const flood: net.Socket[] = []
    t.teardown(() => flood.forEach((s) => s.destroy()))
    let closed = 0
    for (let i = 0; i < FLOOD; i++) {
      const socket = net.connect(d.socketPath)
      flood.push(socket)
      socket.on('close', () => closed++)
      socket.on('error', () => {})
      socket.resume()
      await new Promise((resolve) => socket.once('connect', resolve).once('close', resolve))
      // Every other one starts a request and stops in the middle of its first line.
      if (i % 2) socket.write('GET /v1/sys/seal-st')
    }
    // One keeps sending its headers a byte at a time, as slowloris does.
    const slow = net.connect(d.socketPath)
    flood.push(slow)
    slow.on('close', () => closed++)
    slow.on('error', () => {})
    slow.resume()
    const drip = setInterval(() => slow.writable && slow.write('X'), 100)
    t.teardown(() => clearInterval(drip))
    slow.write('GET /v1/sys/seal-status HTTP/1.1\r\nX-Slow: ')

    const sockets = (await fs.readdir(`/proc/${d.child.pid}/fd`)).length
    t.ok(sockets < MAX_CONNECTIONS + 64, `the daemon holds ${sockets} descriptors, no more than its cap and its own`)
    const status = await deadline(10_000, request(d.socketPath, 'GET', '/v1/sys/seal-status'), 'seal-status')
    t.same([status.status, status.json.sealed], [200, false], 'seal-status answers')
    t.equal((await deadline(10_000, request(d.socketPath, 'POST', '/v1/sys/seal'), 'seal')).status, 204, 'seal too')
    await waitFor(
      60_000,
      () => closed === flood.length,
      () => `${flood.length - closed} connections still open`,
    )
    t.pass('every idle or slow connection was closed by the daemon')
    const { runCli } = await import('../helpers/cli-run.js')
    t.match(
      (await runCli(['status'], { env: { SECRETFS_ADDR: d.socketPath } })).stdout,
      /Sealed +true/,
      'and it serves on',
    )
  },
)

t.test('a value over the store limit is refused with 413', async (t) => {
  const api = await startTestApi(t)
  const value = Buffer.alloc((1 << 20) + 1, 0x61)
  const r = await api.request('PUT', '/v1/secret/huge', value, { 'Content-Type': 'application/octet-stream' })
  t.equal(r.status, 413)
  t.match(r.json.errors[0], /limited to 1048576 bytes/)
  t.same(await api.core.list('secret/'), [])
})

t.test('error messages never name the secret', async (t) => {
  const api = await startTestApi(t)
  for (const target of [
    '/v1/secret/very-private-name',
    '/v1/nomount/very-private-name',
    '/v1/secret/very-private-name?list=true',
  ]) {
    const r = await api.request('GET', target)
    t.ok(r.status >= 400)
    t.notMatch(r.body.toString(), /very-private-name/)
  }
})

t.test('a dev server refuses to seal: its only key is in memory', async (t) => {
  const api = await startTestApi(t)
  await api.core.write('secret/a', Buffer.from('kept'))
  const r = await api.request('POST', '/v1/sys/seal')
  t.equal(r.status, 400)
  t.match(r.json.errors[0], /^this is a dev server: .*sealing it would lose every secret for good; stop it \(Ctrl-C\)/)
  t.same((await api.request('GET', '/v1/sys/seal-status')).json, { initialized: true, sealed: false, term: 1 })
  t.equal(Buffer.from((await api.core.read('secret/a')).value).toString(), 'kept')
})

t.test('seal, seal-status, health, unseal with a key or a passphrase, rotate', async (t) => {
  const key = Buffer.alloc(32, 7)
  const api = await startTestApi(t, { core: await coreWith({ kind: 'key-file', key: Buffer.from(key) }) })
  await api.core.write('secret/a', Buffer.from('{"v":"1"}'))
  t.same((await api.request('GET', '/v1/sys/seal-status')).json, { initialized: true, sealed: false, term: 1 })
  t.equal((await api.request('GET', '/v1/sys/health')).status, 200)

  t.equal((await api.request('PUT', '/v1/sys/seal')).status, 204)
  t.same((await api.request('GET', '/v1/sys/seal-status')).json, { initialized: true, sealed: true })
  t.equal((await api.request('GET', '/v1/sys/health')).status, 503)
  t.equal((await api.request('HEAD', '/v1/sys/health')).status, 503)
  for (const [method, target] of [
    ['GET', '/v1/secret/a'],
    ['GET', '/v1/sys/mounts'],
    ['GET', '/v1/secret/?list=true'],
    ['PUT', '/v1/secret/b'],
  ]) {
    const r = await api.request(method!, target!, '{"v":"2"}')
    t.same([r.status, r.json], [503, { errors: ['secretfs is sealed'] }], `${method} ${target} while sealed`)
  }

  const wrong = await api.request(
    'POST',
    '/v1/sys/unseal',
    JSON.stringify({ key: Buffer.alloc(32, 8).toString('base64') }),
  )
  t.equal(wrong.status, 400)
  t.match(wrong.json.errors[0], /wrong key file/)
  t.equal((await api.request('POST', '/v1/sys/unseal', '{"key":"c2hvcnQ="}')).status, 400, 'a short key')
  t.equal((await api.request('POST', '/v1/sys/unseal', '{}')).status, 400, 'neither key nor passphrase')
  t.equal((await api.request('POST', '/v1/sys/unseal', '{"passphrase":"p"}')).status, 400, 'wrong kind')
  t.equal((await api.request('GET', '/v1/sys/seal-status')).json.sealed, true)

  const ok = await api.request('POST', '/v1/sys/unseal', JSON.stringify({ key: key.toString('base64') }))
  t.same([ok.status, ok.json], [200, { initialized: true, sealed: false, term: 1 }])
  t.same((await api.request('GET', '/v1/secret/a')).json.data, { v: '1' })

  const rotated = await api.request('POST', '/v1/sys/rotate')
  t.same([rotated.status, rotated.json.data], [200, { term: 2 }])
  t.same((await api.request('GET', '/v1/secret/a')).json.data, { v: '1' }, 'still readable after rotation')
})

t.test('unseal with a passphrase', async (t) => {
  const api = await startTestApi(t, {
    core: await coreWith({ kind: 'passphrase', passphrase: Buffer.from('correct horse') }),
  })
  api.core.seal()
  t.equal((await api.request('POST', '/v1/sys/unseal', '{"passphrase":"wrong horse"}')).status, 400)
  const ok = await api.request('POST', '/v1/sys/unseal', '{"passphrase":"correct horse"}')
  t.equal(ok.status, 200)
  t.equal(ok.json.sealed, false)
})

t.test('an unseal passphrase never becomes a JS string in the daemon', async (t) => {
  // Random letters made as bytes: no string of them exists in any process but the daemon's own.
  const letters = () => randomBytes(48).map((b) => 0x61 + (b % 26))
  const secret = letters()
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'pass'), secret, { mode: 0o600 })
  const data = path.join(dir, 'data')
  const init = await runCli(['init', '--data', data, '--passphrase-file', path.join(dir, 'pass')])
  t.equal(init.code, 0, init.stderr)
  // The build: a heap snapshot of a process that runs the TypeScript loader takes minutes.
  const d = await startDaemon(t, {
    args: ['--data', data, '--sealed'],
    mountpoint: false,
    built: true,
    env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}` },
  })
  const unseal = (passphrase: Uint8Array) =>
    Buffer.concat([
      Buffer.from('POST /v1/sys/unseal HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: '),
      Buffer.from(`${passphrase.length + 17}\r\n\r\n{"passphrase":"`),
      passphrase,
      Buffer.from('"}'),
    ])
  // A wrong passphrase first, so that the right one waits its turn in the daemon, read and held.
  const wrong = rawRequest(d.socketPath, unseal(letters()))
  const right = rawRequest(d.socketPath, unseal(secret))
  await wrong.sent
  await right.sent
  // Sent after both, so answered once the daemon has read both, while the first Argon2id still runs.
  t.equal((await request(d.socketPath, 'GET', '/v1/sys/seal-status')).json.sealed, true)
  d.child.kill('SIGUSR2')
  let heap = Buffer.alloc(0)
  const whole = async () => {
    const file = (await fs.readdir(dir)).find((f) => f.endsWith('.heapsnapshot'))
    if (!file) return false
    heap = await fs.readFile(path.join(dir, file))
    try {
      JSON.parse(heap.toString())
      return true
    } catch {
      return false
    }
  }
  await waitFor(120_000, whole, () => 'the daemon wrote no whole heap snapshot')
  t.not(heap.indexOf(d.socketPath), -1, "the snapshot holds the daemon's strings")
  t.equal(heap.indexOf(secret), -1, 'none of them holds the passphrase')
  t.match(await wrong.reply, /^HTTP\/1\.1 400 /)
  t.match(await right.reply, /^HTTP\/1\.1 200 /)
})

/** Sends `bytes` on a new connection: `sent` once the kernel has them, `reply` once it closes. */
function rawRequest(socketPath: string, bytes: Buffer): { sent: Promise<void>; reply: Promise<string> } {
  const socket = net.connect(socketPath)
  let out = ''
  socket.on('data', (d: Buffer) => (out += d.toString('latin1')))
  const reply = new Promise<string>((resolve, reject) => {
    socket.on('end', () => resolve(out))
    socket.on('error', reject)
  })
  const sent = new Promise<void>((resolve, reject) => socket.write(bytes, (e) => (e ? reject(e) : resolve())))
  return { sent, reply }
}

/** Each answer in a raw reply of pipelined answers, in order (bodies framed by Content-Length). */
function parseReplies(raw: string): { status: number; json: any }[] {
  const replies: { status: number; json: any }[] = []
  for (let rest = raw; rest.length > 0;) {
    const head = rest.slice(0, rest.indexOf('\r\n\r\n'))
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0)
    const body = rest.slice(head.length + 4, head.length + 4 + length)
    replies.push({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]), json: body ? JSON.parse(body) : undefined })
    rest = rest.slice(head.length + 4 + length)
  }
  return replies
}

/** `promise`, or a failure naming `what` if it has not settled within `ms`. */
function deadline<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/** Resolves once `condition()` holds (checked every 50 ms); fails with `what()` after `ms`. */
async function waitFor(ms: number, condition: () => boolean | Promise<boolean>, what: () => string): Promise<void> {
  const end = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
