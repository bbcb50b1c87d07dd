// Kernel caching never hides the core's state: a change made through the control API is what
// every stat and read on the mount sees once the API has answered, although the kernel caches
// names, attributes and (on the low-level binding) contents; and a write through the mount is in
// the core when close returns. Also: an integrity failure reads as EIO, is logged by kind, and never returns data.
import t from 'tap'
import { Core } from '../../src/core/core.js'
import { MemoryStorage } from '../../src/storage/memory-storage.js'
import { startTestApi } from '../helpers/api-fixture.js'
import { captureLog } from '../helpers/capture-log.js'
import { mountInProcess, sh } from '../helpers/daemon.js'

const unlock = { kind: 'key-file', key: Buffer.alloc(32, 3) } as const
const storage = new MemoryStorage()
const log = captureLog()
const core = new Core({ storage, log })
await core.initialize(unlock)
await core.unseal(unlock)
const api = await startTestApi(t, { core })
const { mountpoint: mnt } = await mountInProcess(t, core, log)
const root = (cmd: string) => sh(cmd, { cwd: mnt })
const octets = { 'Content-Type': 'application/octet-stream' }

async function apiWrite(path: string, value: string): Promise<void> {
  const r = await api.request('PUT', `/v1/${path}`, value, octets)
  if (r.status !== 204) throw new Error(`write ${path}: ${r.status} ${r.body}`)
}
async function apiCall(method: string, target: string, body?: string): Promise<void> {
  const r = await api.request(method, target, body, body === undefined ? {} : { 'Content-Type': 'application/json' })
  if (r.status !== 204) throw new Error(`${method} ${target}: ${r.status} ${r.body}`)
}
/** Node's readFileSync reads as many bytes as fstat reports: a stale size would cut the value. */
const readFile = (path: string) =>
  root(`node -e 'process.stdout.write(require("fs").readFileSync(${JSON.stringify(path)}))'`)

t.test('an API write is seen by the very next stat, cat and readFile, however sizes change', async (t) => {
  await apiWrite('secret/v', 'first')
  for (const [i, value] of ['short', 'a much longer value than before', 'mid-size', '', 'x'].entries()) {
    // The previous size is in the kernel's cache: these stats ran just now.
    t.equal((await root('stat -c %s secret/v; stat -c %s secret/v')).code, 0)
    await apiWrite('secret/v', value)
    const r = await root('stat -c %s secret/v && cat secret/v')
    t.equal(r.stdout, `${value.length}\n${value}`, `round ${i}: stat and cat`)
    t.equal((await root('stat secret/v')).code, 0, 'the stat that puts it in the cache')
    await apiWrite('secret/v', value + value)
    t.equal((await readFile('secret/v')).stdout, value + value, `round ${i}: readFile`)
  }
  t.equal((await root('stat secret/v')).code, 0, 'the stat that puts it in the cache')
  await apiCall('DELETE', '/v1/secret/v')
  t.match((await root('stat secret/v')).stderr, /No such file or directory/, 'a delete is seen by stat')
  t.match((await root('cat secret/v')).stderr, /No such file or directory/)
  await core.mkdir('secret/made')
  t.equal((await root('ls -A secret')).stdout, 'made\n')
  await apiWrite('secret/made/f', 'new')
  t.equal((await root('cat secret/made/f')).stdout, 'new')
})

t.test('ls -l asks for each name once: the kernel keeps the attributes of a lookup', async (t) => {
  for (let i = 0; i < 40; i++) await core.write(`secret/listed/s${i}`, Buffer.from('v'))
  const stat = core.stat.bind(core)
  let stats = 0
  core.stat = (p: string) => {
    stats++
    return stat(p)
  }
  t.teardown(() => void (core.stat = stat))
  t.equal((await root('ls -l secret/listed | wc -l')).stdout.trim(), '41')
  t.ok(stats <= 40 + 5, `ls -l of 40 names: ${stats} stats of the core (not 80)`)
})

t.test('names the kernel still has cached, but the core removed, behave as gone', async (t) => {
  await apiWrite('secret/cached', '1')
  await apiWrite('secret/cached2', '2')
  t.equal((await root('cat secret/cached secret/cached2')).stdout, '12', 'both names now in the kernel cache')
  await apiCall('DELETE', '/v1/secret/cached')
  await apiCall('DELETE', '/v1/secret/cached2')
  t.match((await root('cat secret/cached')).stderr, /No such file or directory/)
  t.match((await root('stat secret/cached')).stderr, /No such file or directory/)
  t.equal((await root('echo again > secret/cached && cat secret/cached')).stdout, 'again\n', 'a write creates it anew')
  t.equal(
    (await root('mkdir secret/cached2 && stat -c %F secret/cached2')).stdout,
    'directory\n',
    'mkdir looks up afresh',
  )
})

t.test('a write through the mount is in the core when close returns', async (t) => {
  t.equal((await root('echo written > secret/w')).code, 0)
  t.equal(Buffer.from((await core.read('secret/w')).value).toString(), 'written\n')
})

t.test('mounts made and removed through the API are seen at the root at once', async (t) => {
  await apiCall('POST', '/v1/sys/mounts/viaapi', '{"type":"generic"}')
  t.match((await root('ls')).stdout, /^viaapi$/m)
  await apiWrite('viaapi/a/b', 'x')
  t.equal((await root('stat -c %F viaapi viaapi/a viaapi/a/b')).code, 0, 'all in the kernel cache now')
  await apiCall('POST', '/v1/sys/remount', '{"from":"viaapi","to":"moved"}')
  t.match((await root('stat viaapi/a/b')).stderr, /No such file or directory/, 'gone from the old name')
  t.equal((await root('cat moved/a/b')).stdout, 'x')
  t.equal((await root('stat -c %F moved moved/a')).code, 0)
  await apiCall('DELETE', '/v1/sys/mounts/moved')
  t.match((await root('stat moved/a')).stderr, /No such file or directory/, 'an unmount is seen by stat')
  t.notMatch((await root('ls')).stdout, /viaapi|moved/)
})

t.test('an integrity failure reads as EIO, is logged by kind only, and returns nothing', async (t) => {
  const before = new Set(storage.raw().keys())
  await core.write('secret/tampered-name', Buffer.from('the real value'))
  for (const [k, v] of storage.raw()) if (!before.has(k)) v[v.length - 3]! ^= 0x40
  await core.write('secret/intact', Buffer.from('fine'))
  t.equal((await root('cat secret/intact')).stdout, 'fine', 'the rest still reads')
  const r = await root(`cat secret/tampered-name`)
  t.equal(r.code, 1)
  t.match(r.stderr, /Input\/output error/)
  t.equal(r.stdout, '', 'no data')
  t.ok(
    log.lines.some((l) => /integrity/.test(l)),
    'logged',
  )
  t.notOk(
    log.lines.some((l) => /tampered|intact|real value/.test(l)),
    'without a name or value',
  )
})

t.test('sealed: the root still stats, listing and the secrets are refused', async (t) => {
  await apiWrite('secret/kept', 'v')
  t.equal((await root('stat -c %s secret/kept')).stdout, '1\n')
  await apiCall('POST', '/v1/sys/seal')
  t.match((await root('stat secret/kept')).stderr, /Permission denied/, 'no attributes from before the seal')
  t.equal((await root('stat -c %F .')).stdout, 'directory\n')
  t.match((await root('ls')).stderr, /Permission denied/)
  await core.unseal(unlock)
  t.match((await root('ls')).stdout, /secret/)
})
