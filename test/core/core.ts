// The core's mount table operations and routing, on the seed's semantics.
import t from 'tap'
import { Core, builtinBackends } from '../../src/core/core.js'
import { GenericBackend } from '../../src/backends/generic-backend.js'
import type { Backend, BackendFactory } from '../../src/backends/backend.js'
import { MemoryStorage } from '../../src/storage/memory-storage.js'
import { kind } from '../helpers/error-match.js'

const text = async (core: Core, p: string) => Buffer.from((await core.read(p)).value).toString()

t.test('a new store has secret/ and sys/, as in the seed', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  t.same(
    core
      .mounts()
      .map((m) => [m.path, m.type, m.description])
      .sort(),
    [
      ['secret/', 'generic', 'generic secret storage'],
      ['sys/', 'system', 'system endpoints used for control, policy and debugging'],
    ],
  )
  t.same(await core.list(''), ['secret/', 'sys/'])
  t.match(Buffer.from((await core.read('sys/mounts')).value).toString(), /^Path +Type +Description\n/)
})

t.test('mount, and the same type twice shares no data', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  const entry = await core.mount('generic', 'generic')
  t.equal(entry.path, 'generic/')
  t.match(entry.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  await core.mount('other/', 'generic', { description: 'd', config: { defaultLeaseTtl: 60, maxLeaseTtl: 3600 } })
  const other = core.mounts().find((m) => m.path === 'other/')!
  t.same([other.description, other.config], ['d', { defaultLeaseTtl: 60, maxLeaseTtl: 3600 }])
  await core.write('secret/foo', Buffer.from('in secret'))
  await core.write('generic/foo', Buffer.from('in generic'))
  t.equal(await text(core, 'secret/foo'), 'in secret')
  t.equal(await text(core, 'generic/foo'), 'in generic')
  await t.rejects(core.read('other/foo'), kind('not-found'))
  t.same(await core.list('other/'), [])
})

t.test('mount refuses what it must, with a clear error', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  await t.rejects(core.mount('secret', 'generic'), kind('exists'))
  await t.rejects(core.mount('secret/', 'generic'), kind('exists'))
  await t.rejects(core.mount('sys', 'generic'), kind('reserved'))
  await t.rejects(core.mount('.hidden', 'generic'), kind('reserved'))
  await t.rejects(core.mount('', 'generic'), kind('invalid'))
  await t.rejects(core.mount('/', 'generic'), kind('invalid'))
  await t.rejects(core.mount('a/b', 'generic'), kind('invalid'))
  await t.rejects(core.mount('..', 'generic'), kind('invalid'))
  await t.rejects(core.mount('a\0b', 'generic'), kind('invalid'))
  await t.rejects(core.mount('x', 'nonsense'), kind('invalid', /unknown backend type/))
  await t.rejects(core.mount('x', 'system'), kind('invalid', /unknown backend type/))
  await t.rejects(core.mount('x', 'generic', { config: { defaultLeaseTtl: -1 } }), kind('invalid'))
  await t.rejects(core.mount('x', 'generic', { config: { defaultLeaseTtl: 10, maxLeaseTtl: 5 } }), kind('invalid'))
  t.equal(core.mounts().length, 2, 'nothing was mounted')
})

t.test('unmount deletes the data; a new mount at the same path starts empty', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  await core.mount('generic', 'generic')
  await core.write('generic/a/b', Buffer.from('x'))
  await core.unmount('generic/')
  await t.rejects(core.read('generic/a/b'), kind('not-found', /no mount/))
  await core.mount('generic', 'generic')
  await t.rejects(core.read('generic/a/b'), kind('not-found'))
  await t.rejects(core.unmount('nothing'), kind('not-found'))
  await t.rejects(core.unmount('sys'), kind('reserved'))
  const raw = (core.storage as MemoryStorage).raw()
  await core.unmount('generic')
  await core.unmount('secret')
  t.same([...raw.keys()].filter((k) => k.startsWith('data/')).length, 1, 'only the mount table is left')
})

t.test('remount keeps the data under the new path', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  await core.mount('generic', 'generic')
  await core.write('generic/x', Buffer.from('kept'))
  const moved = await core.remount('generic', 'moved/')
  t.equal(moved.path, 'moved/')
  t.equal(await text(core, 'moved/x'), 'kept')
  await t.rejects(core.read('generic/x'), kind('not-found'))
  await t.rejects(core.remount('moved', 'secret'), kind('exists'))
  await t.rejects(core.remount('moved', 'sys'), kind('reserved'))
  await t.rejects(core.remount('sys', 'elsewhere'), kind('reserved'))
  await t.rejects(core.remount('nothing', 'elsewhere'), kind('not-found'))
  await t.rejects(core.rename('moved/x', 'secret/x'), kind('cross-mount'))
})

t.test('the mount table persists across seal and unseal', async (t) => {
  const core = new Core({ storage: new MemoryStorage() })
  t.teardown(() => core.close())
  const unlock = { kind: 'key-file', key: Buffer.alloc(32, 3) } as const
  await core.initialize(unlock)
  await core.unseal(unlock)
  await core.mount('kept', 'generic')
  await core.write('kept/s', Buffer.from('v'))
  core.seal()
  await core.unseal(unlock)
  t.ok(core.mounts().some((m) => m.path === 'kept/'))
  t.equal(await text(core, 'kept/s'), 'v')
})

// A backend that hands out leases and can be told to fail revocation.
function leasingBackend(state: { failRevoke: boolean; revoked: number }): BackendFactory {
  return (ctx) => {
    const generic = new GenericBackend(ctx)
    const backend: Backend = {
      stat: (p) => generic.stat(p),
      list: (p) => generic.list(p),
      write: (p, v) => generic.write(p, v),
      read: async (p) => ({
        ...(await generic.read(p)),
        lease: { ttl: 60, maxTtl: 0, renewable: true, data: { user: 'u-' + p } },
      }),
      revoke: async () => {
        if (state.failRevoke) throw new Error('the upstream service is down')
        state.revoked++
      },
    }
    return backend
  }
}

t.test('f: an unmount whose revocation fails leaves the mount and its data in place', async (t) => {
  const state = { failRevoke: true, revoked: 0 }
  const core = await Core.dev({ backends: { ...builtinBackends, leasing: leasingBackend(state) } })
  t.teardown(() => core.close())
  await core.mount('creds', 'leasing')
  await core.write('creds/a', Buffer.from('A'))
  const { lease } = await core.read('creds/a')
  t.match(lease, {
    id: /^creds\/a\/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    data: { user: 'u-a' },
  })
  await core.read('creds/a')
  t.equal((await core.leases('creds')).length, 2)

  await t.rejects(core.unmount('creds'), kind('busy', /revoking a lease/))
  t.ok(
    core.mounts().some((m) => m.path === 'creds/'),
    'still mounted',
  )
  t.equal(Buffer.from((await core.read('creds/a')).value).toString(), 'A', 'data intact')
  await t.rejects(core.remount('creds', 'moved'), kind('busy'))
  t.ok(
    core.mounts().some((m) => m.path === 'creds/'),
    'a failed remount leaves it where it was',
  )

  state.failRevoke = false
  await core.remount('creds', 'moved')
  t.equal(state.revoked, 3, 'remount revoked every lease')
  t.equal((await core.leases('moved')).length, 0)
  await core.read('moved/a')
  await core.unmount('moved')
  t.equal(state.revoked, 4, 'unmount revoked the new lease')
})

t.test('f: an unmount whose data deletion fails leaves the mount in place', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  await core.mount('m', 'generic')
  await core.write('m/a', Buffer.from('A'))
  const storage = core.storage as MemoryStorage
  const batch = storage.batch.bind(storage)
  storage.batch = async () => {
    throw Object.assign(new Error('disk full'), { code: 'SQLITE_FULL' })
  }
  await t.rejects(core.unmount('m'), kind('busy', /deleting the mount's data failed/))
  storage.batch = batch
  t.ok(core.mounts().some((m) => m.path === 'm/'))
  t.equal(await text(core, 'm/a'), 'A')
})

t.test('request paths are checked before they reach a backend', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  for (const bad of ['secret/../x', 'secret//x', 'secret/./x', 'secret/a\0b', '/secret/x', 'secret/\x01'])
    await t.rejects(core.read(bad), kind('invalid'), JSON.stringify(bad))
  await t.rejects(core.read('nomount/x'), kind('not-found'))
  await t.rejects(core.write('sys/mounts', Buffer.from('x')), kind('read-only'))
  await t.rejects(core.delete('sys/mounts'), kind('read-only'))
})
