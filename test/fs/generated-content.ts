// Issue 3, item 5: generated content is made once per open and served from the handle; stat,
// ls -l, find and name completion never generate it. Also: an unmount whose revocation fails.
import t from 'tap'
import { Core, builtinBackends } from '../../src/core/core.js'
import { captureLog } from '../helpers/capture-log.js'
import { countingBackend, minted } from '../helpers/counting-backend.js'
import { mountInProcess, sh } from '../helpers/daemon.js'

const { state, factory } = countingBackend()
const log = captureLog()
const core = await Core.dev({ backends: { ...builtinBackends, counting: factory }, log })
t.teardown(() => core.close())
const { mountpoint: mnt } = await mountInProcess(t, core, log)
const root = (cmd: string) => sh(cmd, { cwd: mnt })

t.test('mkdir ROOT/counting mounts the backend type of that name', async (t) => {
  t.equal((await root('mkdir counting')).code, 0)
  t.match((await root('cat sys/mounts')).stdout, /^counting\/ +counting$/m)
})

t.test('stat, ls -l, find and completion mint nothing', async (t) => {
  t.match((await root('ls -l counting')).stdout, /^-r-------- +1 .* creds$/m)
  t.equal((await root('stat -c %s counting/creds')).stdout, `${1 << 20}\n`, 'the size is the upper bound')
  t.equal((await root('find counting -type f')).stdout, 'counting/creds\n')
  t.equal((await root('echo counting/cr*')).stdout, 'counting/creds\n', 'glob, as completion does')
  t.equal((await root('test -r counting/creds && test -f counting/creds && echo ok')).stdout, 'ok\n')
  t.equal(state.mints, 0)
})

t.test('one cat mints exactly once and returns the whole content', async (t) => {
  const before = state.mints
  const out = (await root('cat counting/creds')).stdout
  t.equal(state.mints, before + 1)
  const doc = JSON.parse(out) as { secret: string; lease_id: string }
  t.ok(doc.secret === minted(before + 1), 'every chunk comes from the same mint, none cut or padded')
  t.match(doc.lease_id, /^counting\/creds\/[0-9a-f-]{36}$/, 'with its lease')
  const again = JSON.parse((await root('cat counting/creds')).stdout) as { secret: string }
  t.equal(state.mints, before + 2)
  t.ok(again.secret === minted(before + 2), 'the next open mints afresh')
  const whole = JSON.parse((await root('dd if=counting/creds bs=4096 2>/dev/null')).stdout) as { secret: string }
  t.ok(whole.secret === minted(before + 3))
  t.equal(state.mints, before + 3, 'small reads: still one mint per open')
  t.equal((await root('wc -c < counting/creds && cat counting/creds >/dev/null')).code, 0)
  t.equal(state.mints, before + 5)
  t.match((await root('echo x > counting/creds')).stderr, /Permission denied/)
})

t.test('rmdir of a mount whose leases cannot be revoked: EBUSY, mount and data stay, reason logged', async (t) => {
  const leases = await core.leases('counting/')
  t.ok(leases.length > 0, 'cat left leases')
  state.failRevoke = true
  const r = await root('rmdir counting')
  t.same([r.code, r.stdout], [1, ''])
  t.match(r.stderr, /Device or resource busy/)
  t.match((await root('ls')).stdout, /^counting$/m)
  t.match((await root('cat sys/mounts')).stdout, /^counting\/ +counting$/m, 'still in the mount table')
  const ids = (l: { id: string }[]) => l.map((x) => x.id).sort()
  t.same(ids(await core.leases('counting/')), ids(leases), 'every lease is kept, to be revoked later')
  const mints = state.mints
  const served = JSON.parse((await root('cat counting/creds')).stdout) as { secret: string }
  t.ok(served.secret === minted(mints + 1), 'the mount still serves its content')
  t.ok(
    log.lines.some((l) => /busy: revoking a lease of the mount failed/.test(l)),
    'the reason is in the log',
  )
  t.notOk(
    log.lines.some((l) => /creds|counting\//.test(l)),
    'no path in the log',
  )
  state.failRevoke = false
  t.equal((await root('rmdir counting')).code, 0)
  t.notMatch((await root('ls')).stdout, /counting/)
})
