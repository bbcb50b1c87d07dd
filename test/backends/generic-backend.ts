// The generic backend: values exactly as written, nested paths with directory semantics.
import t from 'tap'
import { Core } from '../../src/core/core.js'
import { kind } from '../helpers/error-match.js'

const text = async (core: Core, p: string) => Buffer.from((await core.read(p)).value).toString()

t.test('values are stored exactly as written', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  for (const [name, value] of [
    ['empty', Buffer.alloc(0)],
    ['binary', binary],
    ['multi', Buffer.from('line 1\nline 2\r\n\n')],
    ['json', Buffer.from('{"a":1}')],
  ] as const) {
    await core.write(`secret/${name}`, value)
    t.ok(Buffer.from((await core.read(`secret/${name}`)).value).equals(value), name)
  }
})

t.test('created stays, modified moves', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  await core.write('secret/t', Buffer.from('1'))
  const first = await core.read('secret/t')
  await new Promise((r) => setTimeout(r, 5))
  await core.write('secret/t', Buffer.from('2'))
  const second = await core.read('secret/t')
  t.equal(second.created.getTime(), first.created.getTime())
  t.ok(second.modified > first.modified)
  const info = await core.stat('secret/t')
  t.match(info, { kind: 'file', size: 1 })
})

t.test('nested paths behave as directories', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  await core.write('secret/team/db/password', Buffer.from('p'))
  await core.write('secret/team/db/user', Buffer.from('u'))
  await core.write('secret/team/api', Buffer.from('k'))
  t.same(await core.list('secret/team'), ['api', 'db/'])
  t.same(await core.list('secret/team/'), ['api', 'db/'], 'a trailing slash is accepted')
  t.same(await core.list('secret/'), ['team/'])
  t.match(await core.stat('secret/team'), { kind: 'dir' })
  t.equal(await core.stat('secret/nothing'), undefined)

  // A name is a secret or a directory, never both.
  await t.rejects(core.write('secret/team/db', Buffer.from('x')), kind('is-dir'))
  await t.rejects(core.write('secret/team/api/x', Buffer.from('x')), kind('not-dir'))
  await t.rejects(core.read('secret/team'), kind('is-dir'))
  await t.rejects(core.list('secret/team/api'), kind('not-dir'))
  await t.rejects(core.list('secret/none'), kind('not-found'))
  await t.rejects(core.delete('secret/team'), kind('is-dir'))
  await t.rejects(core.delete('secret/none'), kind('not-found'))

  // Directories that exist only through their contents go when emptied.
  await core.delete('secret/team/api')
  await core.delete('secret/team/db/password')
  await core.delete('secret/team/db/user')
  t.same(await core.list('secret/'), [])
})

t.test('empty directories exist after mkdir until rmdir', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  await core.mkdir('secret/a')
  await core.mkdir('secret/a/b')
  t.same(await core.list('secret/a'), ['b/'])
  t.same(await core.list('secret/a/b'), [])
  await t.rejects(core.mkdir('secret/a'), kind('exists'))
  await core.write('secret/a/b/s', Buffer.from('x'))
  await t.rejects(core.rmdir('secret/a/b'), kind('not-empty'))
  await core.delete('secret/a/b/s')
  t.same(await core.list('secret/a/b'), [], 'still there when emptied')
  await core.rmdir('secret/a/b')
  await core.rmdir('secret/a')
  await t.rejects(core.rmdir('secret/a'), kind('not-found'))
  await core.write('secret/f', Buffer.from('x'))
  await t.rejects(core.rmdir('secret/f'), kind('not-dir'))
  await t.rejects(core.mkdir('secret/f'), kind('exists'))
  await t.rejects(core.mkdir('secret/f/g'), kind('not-dir'))
})

t.test('the size limit, with a clear error', async (t) => {
  const core = await Core.dev({ maxValueSize: 1024 })
  t.teardown(() => core.close())
  await core.write('secret/ok', Buffer.alloc(1024))
  await t.rejects(core.write('secret/big', Buffer.alloc(1025)), kind('too-large', /limited to 1024 bytes/))
  await t.rejects(core.read('secret/big'), kind('not-found'), 'nothing was stored')
  const big = await Core.dev()
  t.teardown(() => big.close())
  await big.write('secret/mib', Buffer.alloc(1 << 20, 1))
  await t.rejects(big.write('secret/over', Buffer.alloc((1 << 20) + 1)), kind('too-large'))
})

t.test('rename moves files and trees, replacing a file target', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  await core.write('secret/a', Buffer.from('A'))
  await core.write('secret/b', Buffer.from('B'))
  await core.rename('secret/a', 'secret/b')
  t.equal(await text(core, 'secret/b'), 'A')
  await t.rejects(core.read('secret/a'), kind('not-found'))

  await core.write('secret/tree/x/1', Buffer.from('1'))
  await core.write('secret/tree/y', Buffer.from('y'))
  await core.mkdir('secret/tree/empty')
  await core.rename('secret/tree', 'secret/moved')
  t.same(await core.list('secret/moved'), ['empty/', 'x/', 'y'])
  t.equal(await text(core, 'secret/moved/x/1'), '1')
  await t.rejects(core.list('secret/tree'), kind('not-found'))

  await core.mkdir('secret/emptydir')
  await core.rename('secret/moved', 'secret/emptydir')
  t.equal(await text(core, 'secret/emptydir/y'), 'y', 'onto an empty directory')
  await core.write('secret/full/z', Buffer.from('z'))
  await t.rejects(core.rename('secret/emptydir', 'secret/full'), kind('not-empty'))
  await t.rejects(core.rename('secret/emptydir', 'secret/b'), kind('not-dir'))
  await t.rejects(core.rename('secret/b', 'secret/full'), kind('is-dir'))
  await t.rejects(core.rename('secret/emptydir', 'secret/emptydir/in'), kind('invalid'))
  await t.rejects(core.rename('secret/none', 'secret/x'), kind('not-found'))
})

t.test('a stat is answered from memory once the entry was read or written, and stays true', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  const storage = core.storage
  const get = storage.get.bind(storage)
  let gets = 0
  storage.get = (key: string) => {
    gets++
    return get(key)
  }
  const size = async (p: string) => (await core.stat(p))?.size
  await core.write('secret/a', Buffer.from('four'))
  gets = 0
  t.equal(await size('secret/a'), 4)
  t.equal(await size('secret/a'), 4)
  t.equal(gets, 0, 'two stats after the write: nothing read from the store')
  await core.write('secret/a', Buffer.from('seven!!'))
  t.equal(await size('secret/a'), 7, 'rewritten')
  await core.rename('secret/a', 'secret/b')
  t.equal(await size('secret/a'), undefined, 'moved away')
  t.equal(await size('secret/b'), 7, 'moved here')
  await core.write('secret/d/c', Buffer.from('c'))
  await core.rename('secret/d', 'secret/e')
  t.equal(await size('secret/d/c'), undefined, 'its directory moved away')
  t.equal(await size('secret/e/c'), 1)
  await core.delete('secret/b')
  t.equal(await size('secret/b'), undefined, 'deleted')
})

t.test(
  "a made directory is stat'ed from memory, a missing name with one store query, then written with none",
  async (t) => {
    const core = await Core.dev()
    t.teardown(() => core.close())
    const storage = core.storage
    const [get, list, probe] = [storage.get.bind(storage), storage.list.bind(storage), storage.probe.bind(storage)]
    let reads = 0
    storage.get = (key: string) => (reads++, get(key))
    storage.list = (prefix: string, limit?: number) => (reads++, list(prefix, limit))
    storage.probe = (key: string, prefix: string) => (reads++, probe(key, prefix))
    const statReads = async (p: string) => {
      reads = 0
      const info = await core.stat(p)
      return { kind: info?.kind, reads }
    }
    await core.mkdir('secret/made')
    t.same(await statReads('secret/made'), { kind: 'dir', reads: 0 }, 'a directory made here')
    t.same(
      await statReads('secret/made/new'),
      { kind: undefined, reads: 1 },
      'a missing name: its value and listing at once',
    )
    reads = 0
    await core.write('secret/made/new', Buffer.from('n'))
    t.equal(reads, 0, 'written after the stat that found it missing: nothing read again')
    t.same(await statReads('secret/made/other'), { kind: undefined, reads: 1 })
    await core.write('secret/made/third', Buffer.from('3'))
    reads = 0
    await core.write('secret/made/other', Buffer.from('o'))
    t.equal(reads, 1, 'with a change between: read again (its value and listing at once), not its ancestors')
    t.equal(Buffer.from((await core.read('secret/made/new')).value).toString(), 'n')
    await t.rejects(core.write('secret/made/new/under', Buffer.from('x')), kind('not-dir'))
    await core.write('secret/implicit/one', Buffer.from('1'))
    t.same((await statReads('secret/implicit')).kind, 'dir', 'a directory only its contents make')
    for (const name of ['new', 'other', 'third']) await core.delete(`secret/made/${name}`)
    await core.rmdir('secret/made')
    t.same((await statReads('secret/made')).kind, undefined, 'a removed directory is gone')
  },
)
