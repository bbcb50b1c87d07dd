// Names from users are data, never object keys: JavaScript's own property names (__proto__,
// constructor, valueOf...) as backend types, mount paths and sys/ files, on a real SQLite store.
import t from 'tap'
import path from 'node:path'
import { Core, builtinBackends } from '../../src/core/core.js'
import type { Unlock } from '../../src/barrier/seal-config.js'
import { SqliteStorage } from '../../src/storage/sqlite-storage.js'
import { captureLog } from '../helpers/capture-log.js'
import { kind } from '../helpers/error-match.js'
import { tempDir } from '../helpers/daemon.js'

const HOSTILE = ['__proto__', 'constructor', 'valueOf', 'hasOwnProperty', 'toString', 'isPrototypeOf']
const unlock: Unlock = { kind: 'key-file', key: Buffer.alloc(32, 7) }
const text = async (core: Core, p: string) => Buffer.from((await core.read(p)).value).toString()

async function openStore(file: string, options: Partial<ConstructorParameters<typeof Core>[0]> = {}): Promise<Core> {
  const core = new Core({ storage: new SqliteStorage(file), ...options })
  if (!(await core.initialized())) await core.initialize(unlock)
  await core.unseal(unlock)
  return core
}

t.test('a hostile backend type is refused, and the store still opens afterwards', async (t) => {
  const file = path.join(await tempDir(t), 'secretfs.db')
  const core = await openStore(file)
  for (const type of HOSTILE)
    await t.rejects(core.mount('oops', type), kind('invalid', /unknown backend type/), `type ${type}`)
  t.same(
    core
      .mounts()
      .map((m) => m.path)
      .sort(),
    ['secret/', 'sys/'],
    'the table is unchanged',
  )
  t.same(core.backendTypes, ['generic', 'aws', 'database'])
  await core.close()
  const again = await openStore(file)
  t.teardown(() => again.close())
  t.same(
    again
      .mounts()
      .map((m) => m.path)
      .sort(),
    ['secret/', 'sys/'],
  )
})

t.test('a backend that fails to build leaves the table as it was', async (t) => {
  const file = path.join(await tempDir(t), 'secretfs.db')
  const broken = () => {
    throw new Error('cannot build')
  }
  const core = await openStore(file, { backends: { ...builtinBackends, broken } })
  await t.rejects(core.mount('b', 'broken'), { message: 'cannot build' })
  t.notOk(
    core.mounts().some((m) => m.path === 'b/'),
    'not mounted',
  )
  await core.close()
  const again = await openStore(file)
  t.teardown(() => again.close())
  t.notOk(
    again.mounts().some((m) => m.path === 'b/'),
    'and not in the stored table',
  )
})

t.test('hostile names are ordinary mount paths and secret names', async (t) => {
  const file = path.join(await tempDir(t), 'secretfs.db')
  const core = await openStore(file)
  for (const name of HOSTILE) {
    await core.mount(name, 'generic')
    await core.write(`${name}/${name}`, Buffer.from(`value of ${name}`))
    await core.write(`secret/${name}`, Buffer.from(`secret ${name}`))
  }
  await core.close()
  const again = await openStore(file)
  t.teardown(() => again.close())
  for (const name of HOSTILE) {
    t.equal(await text(again, `${name}/${name}`), `value of ${name}`)
    t.equal(await text(again, `secret/${name}`), `secret ${name}`)
  }
  t.same(await again.list('secret/'), [...HOSTILE].sort())
})

t.test('sys/ has its files and no others', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  for (const name of [...HOSTILE, 'mounts/x', ...HOSTILE.map((n) => `leases/${n}`)]) {
    t.equal(await core.stat(`sys/${name}`), undefined, `stat sys/${name}`)
    await t.rejects(core.read(`sys/${name}`), kind('not-found'), `read sys/${name}`)
  }
  t.same(await core.list('sys/'), ['health', 'leases/', 'mounts', 'mounts.json', 'seal-status'])
  for (const name of HOSTILE) {
    t.throws(() => core.lookupLease(name), kind('not-found'), `lease ${name}`)
    t.same(core.listLeases(`${name}/`), [], `leases under ${name}`)
  }
})

t.test('a store whose table names a type this build lacks still unseals; that mount is unavailable', async (t) => {
  const file = path.join(await tempDir(t), 'secretfs.db')
  const core = await openStore(file, { backends: { ...builtinBackends, extra: builtinBackends.generic! } })
  await core.mount('kept', 'extra')
  await core.write('kept/a', Buffer.from('still here'))
  await core.write('secret/b', Buffer.from('b'))
  await core.close()

  const log = captureLog()
  const lacking = await openStore(file, { log })
  t.match(log.lines.join('\n'), /\[error\] .*backend type .*not in this build.*unavailable/)
  t.notMatch(log.lines.join('\n'), /kept/, 'the log names no mount path')
  t.equal(await text(lacking, 'secret/b'), 'b', 'other mounts work')
  t.ok(
    lacking.mounts().some((m) => m.path === 'kept/' && m.type === 'extra'),
    'listed, with its type',
  )
  await t.rejects(lacking.read('kept/a'), kind('unsupported', /not in this build/))
  await t.rejects(lacking.write('kept/a', Buffer.from('x')), kind('unsupported', /not in this build/))
  await t.rejects(lacking.list('kept/'), kind('unsupported', /not in this build/))
  await lacking.close()

  const full = await openStore(file, { backends: { ...builtinBackends, extra: builtinBackends.generic! } })
  t.teardown(() => full.close())
  t.equal(await text(full, 'kept/a'), 'still here', 'its data is untouched')
})
