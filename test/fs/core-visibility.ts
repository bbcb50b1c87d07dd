// Kernel caching never hides the core's state: a write made through the core directly (as the
// control API will) is what the next stat and cat on the mount see, and the other way round.
// Also: an integrity failure reads as EIO, is logged by kind, and never returns data.
import t from 'tap'
import { Core } from '../../src/core/core.js'
import { MemoryStorage } from '../../src/storage/memory-storage.js'
import { captureLog } from '../helpers/capture-log.js'
import { mountInProcess, sh } from '../helpers/daemon.js'

const unlock = { kind: 'key-file', key: Buffer.alloc(32, 3) } as const
const storage = new MemoryStorage()
const log = captureLog()
const core = new Core({ storage, log })
await core.initialize(unlock)
await core.unseal(unlock)
t.teardown(() => core.close())
const { mountpoint: mnt } = await mountInProcess(t, core, log)
const root = (cmd: string) => sh(cmd, { cwd: mnt })

t.test('a core write is seen by the very next cat and stat, however sizes change', async (t) => {
  for (const [i, value] of ['short', 'a much longer value than before', 'mid-size', '', 'x'].entries()) {
    await core.write('secret/v', Buffer.from(value))
    const r = await root('stat -c %s secret/v && cat secret/v')
    t.equal(r.stdout, `${value.length}\n${value}`, `round ${i}`)
  }
  await core.delete('secret/v')
  t.match((await root('cat secret/v')).stderr, /No such file or directory/)
  await core.mkdir('secret/made')
  t.equal((await root('ls -A secret')).stdout, 'made\n')
  await core.write('secret/made/f', Buffer.from('new'))
  t.equal((await root('cat secret/made/f')).stdout, 'new')
})

t.test('names the kernel still has cached, but the core removed, behave as gone', async (t) => {
  await core.write('secret/cached', Buffer.from('1'))
  await core.write('secret/cached2', Buffer.from('2'))
  t.equal((await root('cat secret/cached secret/cached2')).stdout, '12', 'both names now in the kernel cache')
  await core.delete('secret/cached')
  await core.delete('secret/cached2')
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

t.test('a mount made through the core appears at the root at once', async (t) => {
  await core.mount('viaapi', 'generic')
  t.match((await root('ls')).stdout, /^viaapi$/m)
  await core.unmount('viaapi')
  t.notMatch((await root('ls')).stdout, /viaapi/)
})

t.test('an integrity failure reads as EIO, is logged by kind only, and returns nothing', async (t) => {
  const before = new Set(storage.raw().keys())
  await core.write('secret/tampered-name', Buffer.from('the real value'))
  for (const [k, v] of storage.raw()) if (!before.has(k)) v[v.length - 3]! ^= 0x40
  await core.write('secret/intact', Buffer.from('fine'))
  t.equal((await root('cat secret/intact')).stdout, 'fine', 'the rest still reads')
  const r = await root(`cat secret/tampered-name`)
  t.not(r.code, 0)
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

t.test('sealed: the root still stats, listing is refused', async (t) => {
  core.seal()
  t.equal((await root('stat -c %F .')).stdout, 'directory\n')
  t.match((await root('ls')).stderr, /Permission denied/)
  await core.unseal(unlock)
  t.match((await root('ls')).stdout, /secret/)
})
