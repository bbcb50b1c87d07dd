// Leases as a core subsystem: TTL rules, renew, revoke (one, prefix, forced), expiry that revokes
// by itself and retries what fails, seal and unseal, a restart, and a lease that cannot be stored.
import t from 'tap'
import type { Lease } from '../../src/backends/backend.js'
import { Core, builtinBackends } from '../../src/core/core.js'
import { SYSTEM_LEASE_TTL } from '../../src/core/expiration.js'
import { MemoryStorage } from '../../src/storage/memory-storage.js'
import { captureLog } from '../helpers/capture-log.js'
import { cloud, upstream, type Upstream } from '../helpers/cloud-backend.js'
import { kind } from '../helpers/error-match.js'

const unlock = { kind: 'key-file', key: Buffer.alloc(32, 7) } as const

/** A core on `storage` (new or reopened) with the cloud backend, unsealed. */
async function open(storage: MemoryStorage, up: Upstream, log = captureLog()): Promise<Core> {
  const core = new Core({ storage, backends: { ...builtinBackends, cloud: cloud(up) }, log })
  if (!(await core.initialized())) await core.initialize(unlock)
  await core.unseal(unlock)
  return core
}

async function until(what: string, cond: () => boolean, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const seconds = (lease: Lease) => Math.round((lease.expires.getTime() - lease.issued.getTime()) / 1000)

t.test('a lease is stored with its read: id, TTL rules of backend, mount and system', async (t) => {
  const up = upstream()
  const core = await open(new MemoryStorage(), up)
  t.teardown(() => core.close())
  await core.mount('aws', 'cloud')
  const { lease, value } = await core.read('aws/creds/deploy')
  t.match(lease!.id, /^aws\/creds\/deploy\/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  t.same(JSON.parse(Buffer.from(value).toString()), { user: lease!.data.user, security_token: null })
  t.equal(seconds(lease!), SYSTEM_LEASE_TTL, 'no TTL anywhere: the system default, 768h')
  t.equal(SYSTEM_LEASE_TTL, 768 * 3600)
  t.same(core.lookupLease(lease!.id).id, lease!.id)

  await core.mount('short', 'cloud', { config: { defaultLeaseTtl: 600, maxLeaseTtl: 3600 } })
  t.equal(seconds((await core.read('short/creds/x')).lease!), 600, "the mount's default")
  up.ttl = 7200
  t.equal(seconds((await core.read('short/creds/x')).lease!), 3600, "the backend's TTL, capped by the mount's max")
  up.ttl = 60
  up.maxTtl = 30
  t.equal(seconds((await core.read('short/creds/x')).lease!), 30, "capped by the backend's own max")
})

t.test('list is a tree of lease IDs; lookup gives the lease; unknown IDs are not found', async (t) => {
  const up = upstream()
  const core = await open(new MemoryStorage(), up)
  t.teardown(() => core.close())
  await core.mount('aws', 'cloud')
  const a = (await core.read('aws/creds/a')).lease!
  const b = (await core.read('aws/creds/b')).lease!
  t.same(core.listLeases(''), ['aws/'])
  t.same(core.listLeases('aws/'), ['creds/'])
  t.same(core.listLeases('aws/creds/'), ['a/', 'b/'])
  t.same(core.listLeases('aws/creds/a/'), [a.id.split('/').pop()])
  t.same(core.listLeases('nothing/'), [])
  t.equal(core.lookupLease(b.id).data.user, b.data.user)
  t.throws(() => core.lookupLease('aws/creds/a/nope'), kind('not-found'))
  t.throws(() => core.lookupLease('__proto__'), kind('not-found'))
})

t.test('revoke one, a prefix, and a forced prefix that asks no backend', async (t) => {
  const up = upstream()
  const core = await open(new MemoryStorage(), up)
  t.teardown(() => core.close())
  await core.mount('aws', 'cloud')
  const a1 = (await core.read('aws/creds/a')).lease!
  await core.read('aws/creds/a')
  await core.read('aws/creds/ab')
  const b = (await core.read('aws/creds/b')).lease!
  await core.revokeLease(a1.id)
  t.same(up.revoked, [a1.data.user])
  t.throws(() => core.lookupLease(a1.id), kind('not-found'))
  await core.revokeLease(a1.id)
  t.equal(up.revoked.length, 1, 'revoking again is not an error, and does nothing')

  t.equal(await core.revokeLeasePrefix('aws/creds/a'), 1, 'a prefix is a path: creds/a does not take creds/ab')
  t.equal(up.users.size, 2)
  up.failing.add(b.data.user as string)
  await t.rejects(
    core.revokeLeasePrefix('aws/creds/'),
    kind('internal', /1 of 2 leases under that prefix could not be revoked/),
  )
  t.same(core.listLeases('aws/creds/'), ['b/'], 'what failed stays; what worked is gone')
  t.equal(core.lookupLease(b.id).revokeError, 'the backend failed to revoke it')
  t.equal(await core.revokeLeasePrefix('aws/', true), 1, 'forced')
  t.same(core.listLeases(''), [])
  t.ok(up.users.has(b.data.user as string), 'a forced revocation never reached the backend')
})

t.test('renew: renewable leases only, up to the max counted from issue, the backend may cap', async (t) => {
  const up = upstream({ ttl: 60, maxTtl: 100 })
  const core = await open(new MemoryStorage(), up)
  t.teardown(() => core.close())
  await core.mount('aws', 'cloud')
  const lease = (await core.read('aws/creds/a')).lease!
  const renewed = await core.renewLease(lease.id, 30)
  t.ok(renewed.lastRenewal, 'renewal time kept')
  t.ok(Math.abs(renewed.expires.getTime() - Date.now() - 30_000) < 2000, 'expires 30 s from now')
  const again = await core.renewLease(lease.id)
  t.ok(Math.abs(again.expires.getTime() - Date.now() - 60_000) < 2000, 'no increment: its first TTL again')
  const capped = await core.renewLease(lease.id, 1000)
  t.equal(capped.expires.getTime(), lease.maxExpires.getTime(), 'never past the max')
  t.equal(core.lookupLease(lease.id).expires.getTime(), capped.expires.getTime())
  await t.rejects(core.renewLease(lease.id, -1), kind('invalid'))
  await t.rejects(core.renewLease('aws/creds/a/none'), kind('not-found'))

  up.renewCap = 5
  await core.mount('capped', 'cloud')
  const c = (await core.read('capped/creds/c')).lease!
  const r = await core.renewLease(c.id, 50)
  t.ok(r.expires.getTime() - Date.now() <= 5000 + 1000, "the backend's renew shortened it")

  up.renewable = false
  const sts = (await core.read('aws/creds/sts')).lease!
  await t.rejects(core.renewLease(sts.id), kind('invalid', /not renewable/))
})

t.test('expiry revokes by itself; a failing revocation is retried with backoff and blocks nobody', async (t) => {
  const up = upstream({ ttl: 1 })
  const log = captureLog()
  const core = await open(new MemoryStorage(), up, log)
  t.teardown(() => core.close())
  await core.mount('aws', 'cloud')
  const stuck = (await core.read('aws/creds/stuck')).lease!
  up.failing.add(stuck.data.user as string)
  const fine = (await core.read('aws/creds/fine')).lease!
  const gone = (c: Core, id: string) =>
    !c.listLeases(id.slice(0, id.lastIndexOf('/') + 1)).includes(id.split('/').pop()!)
  await until(
    'the fine lease to expire and be revoked',
    () => up.revoked.includes(fine.data.user as string) && gone(core, fine.id),
  )
  t.throws(() => core.lookupLease(fine.id), kind('not-found'), 'a revoked lease is gone')
  await until('a failed attempt on record', () => (core.lookupLease(stuck.id).revokeAttempts ?? 0) >= 1)
  t.match(core.lookupLease(stuck.id), { revokeError: 'the backend failed to revoke it' }, 'listed with its error')
  t.ok(
    log.lines.some((l) => /\[warn\] revoking an expired lease failed \(attempt 1\); retrying in 1s/.test(l)),
    'logged, with when it retries',
  )
  t.notOk(
    log.lines.some((l) => l.includes('stuck') || l.includes(stuck.id)),
    'no lease ID or name in the log',
  )
  await until('a second attempt', () => (core.lookupLease(stuck.id).revokeAttempts ?? 0) >= 2)
  up.failing.clear()
  await until('the retry to succeed', () => up.revoked.includes(stuck.data.user as string) && gone(core, stuck.id))
  t.same(core.listLeases(''), [])
  t.same([...up.users], [])
})

t.test('a thousand leases expiring in the same second are all revoked', async (t) => {
  const up = upstream({ ttl: 1 })
  const core = await open(new MemoryStorage(), up)
  t.teardown(() => core.close())
  await core.mount('aws', 'cloud')
  await Promise.all(Array.from({ length: 1000 }, (_, i) => core.read(`aws/creds/r${i % 10}`)))
  t.equal(up.users.size, 1000)
  await until('every lease revoked and deleted', () => up.users.size === 0 && core.listLeases('').length === 0, 15_000)
  t.pass('all revoked')
})

t.test('seal stops the timers; unseal restores every lease and revokes what expired meanwhile', async (t) => {
  const up = upstream({ ttl: 1 })
  const storage = new MemoryStorage()
  const core = await open(storage, up)
  t.teardown(() => core.close())
  await core.mount('aws', 'cloud')
  up.ttl = 3600
  const kept = (await core.read('aws/creds/kept')).lease!
  up.ttl = 1
  const expiring = (await core.read('aws/creds/expiring')).lease!
  core.seal()
  t.throws(() => core.listLeases(''), kind('sealed'))
  await new Promise((r) => setTimeout(r, 1500))
  t.same(up.revoked, [], 'nothing is revoked while sealed')
  const recovered = up.recovered
  await core.unseal(unlock)
  t.equal(up.recovered, recovered + 1, "each backend's recovery ran at unseal")
  await until('the expired lease revoked after unseal', () => up.revoked.includes(expiring.data.user as string))
  t.equal(core.lookupLease(kept.id).id, kept.id, 'the other lease is back')
  t.same(up.revoked, [expiring.data.user])
})

t.test('a restart (a new core on the same store) revokes what expired while it was down', async (t) => {
  const up = upstream({ ttl: 1 })
  const storage = new MemoryStorage()
  const first = await open(storage, up)
  await first.mount('aws', 'cloud')
  const lease = (await first.read('aws/creds/x')).lease!
  first.seal() // the daemon stops
  await new Promise((r) => setTimeout(r, 1200))
  const second = await open(storage, up)
  t.teardown(() => second.close())
  await until(
    'the lease revoked by the restarted core',
    () => up.revoked.includes(lease.data.user as string) && second.listLeases('').length === 0,
  )
  t.same(second.listLeases(''), [])
})

t.test('unmount revokes every lease first; when that fails the mount stays', async (t) => {
  const up = upstream()
  const core = await open(new MemoryStorage(), up)
  t.teardown(() => core.close())
  await core.mount('aws', 'cloud')
  const a = (await core.read('aws/creds/a')).lease!
  await core.read('aws/creds/b')
  up.failing.add(a.data.user as string)
  await t.rejects(core.unmount('aws'), kind('busy', /revoking a lease of the mount failed/))
  t.ok(core.mounts().some((m) => m.path === 'aws/'))
  t.same(core.listLeases('aws/creds/'), ['a/'], 'the lease that could be revoked is gone')
  up.failing.clear()
  await core.unmount('aws')
  t.same([...up.users], [])
  t.same(core.listLeases(''), [])
})

t.test('a lease that cannot be stored: the secret is revoked at once and the read fails', async (t) => {
  const up = upstream()
  const storage = new MemoryStorage()
  const core = await open(storage, up)
  t.teardown(() => core.close())
  await core.mount('aws', 'cloud')
  const batch = storage.batch.bind(storage)
  storage.batch = async () => {
    throw new Error('disk full')
  }
  await t.rejects(core.read('aws/creds/x'), { message: 'disk full' })
  storage.batch = batch
  t.equal(up.revoked.length, 1, 'the user made for it was revoked')
  t.same([...up.users], [])
  t.same(core.listLeases(''), [])
})
