// The contract every Storage implementation keeps, run against each of them.
import t, { type Test } from 'tap'
import path from 'node:path'
import { MemoryStorage } from '../../src/storage/memory-storage.js'
import { PostgresStorage } from '../../src/storage/postgres-storage.js'
import { SqliteStorage } from '../../src/storage/sqlite-storage.js'
import type { Storage } from '../../src/storage/storage.js'
import { havePostgres, startPostgres } from '../helpers/postgres.js'

async function contract(t: Test, s: Storage): Promise<void> {
  const v = (x: string) => Buffer.from(x)

  t.equal(await s.get('missing'), undefined)
  await s.put('a', v('1'))
  t.same(Buffer.from((await s.get('a'))!), v('1'))
  await s.put('a', v('2'))
  t.same(Buffer.from((await s.get('a'))!), v('2'), 'put replaces')
  await s.put('a', new Uint8Array())
  t.equal((await s.get('a'))!.length, 0, 'an empty value is a value')

  await Promise.all(['d/x', 'd/y/1', 'd/y/2', 'd/z/q/r', 'd0', 'e'].map((k) => s.put(k, v(k))))
  t.same(await s.list('d/'), ['x', 'y/', 'z/'], 'immediate children, directories once')
  t.same(await s.list(''), ['a', 'd/', 'd0', 'e'])
  t.same(await s.list('nope/'), [])

  // A stat's one query: the value, and whether anything begins with the prefix (a directory's).
  const probe = async (key: string) => {
    const { value, beneath } = await s.probe(key, key + '/')
    return { value: value && Buffer.from(value).toString(), beneath }
  }
  t.same(await probe('d/x'), { value: 'd/x', beneath: false }, 'a file')
  t.same(await probe('a'), { value: '', beneath: false }, 'an empty value is a value')
  t.same(await probe('d'), { value: undefined, beneath: true }, 'a directory, not taken for d0')
  t.same(await probe('d/z'), { value: undefined, beneath: true }, 'a directory with only a deeper one in it')
  t.same(await probe('d/w'), { value: undefined, beneath: false }, 'missing, before keys that begin otherwise')
  t.same(await probe('d0'), { value: 'd0', beneath: false })
  t.same(await probe('zz'), { value: undefined, beneath: false }, 'missing, past the last key')
  t.equal((await s.probe('d0', 'd')).beneath, true, 'any prefix')

  await s.delete('d/x')
  t.equal(await s.get('d/x'), undefined)
  await s.delete('d/x') // deleting what is gone is no error

  await s.batch([
    { op: 'put', key: 'n', value: v('n') },
    { op: 'delete-prefix', prefix: 'd/y/' },
    { op: 'delete', key: 'e' },
  ])
  t.same(await s.list('d/'), ['z/'])
  t.equal(await s.get('e'), undefined)
  t.same(Buffer.from((await s.get('n'))!), v('n'))

  // Writes asked one after another without waiting land in that order; a batch's later op wins.
  const last = Array.from({ length: 20 }, (_, i) => s.put('order', v(`w${i}`)))
  await Promise.all(last)
  t.same(Buffer.from((await s.get('order'))!), v('w19'), 'the last write asked is the one kept')
  await s.batch([
    { op: 'put', key: 'twice', value: v('first') },
    { op: 'put', key: 'twice', value: v('second') },
    { op: 'delete', key: 'order' },
    { op: 'put', key: 'order', value: v('again') },
  ])
  t.same(Buffer.from((await s.get('twice'))!), v('second'))
  t.same(Buffer.from((await s.get('order'))!), v('again'))

  // Many children, more than one page of a scan, mixed with deep subtrees.
  const keys: string[] = []
  for (let i = 0; i < 700; i++) keys.push(`big/${String(i).padStart(4, '0')}` + (i % 7 === 0 ? '/deep/x' : ''))
  await Promise.all(keys.map((k) => s.put(k, v(k))))
  const listed = await s.list('big/')
  t.equal(listed.length, 700)
  t.equal(listed.filter((n) => n.endsWith('/')).length, 100)
  t.equal((await s.list('big/', 5)).length, 5, 'a limit stops the listing early')
  t.same(await s.list('nope/', 1), [])

  // The largest slice of the values under a prefix, compared byte by byte.
  await s.batch([
    { op: 'put', key: 'm/a', value: Buffer.from([1, 0, 0, 0, 9, 7]) },
    { op: 'put', key: 'm/b/c', value: Buffer.from([1, 0, 0, 1, 0]) },
    { op: 'put', key: 'm/d', value: Buffer.from([1, 0, 0, 0, 255]) },
    { op: 'put', key: 'm0', value: Buffer.from([1, 9, 9, 9, 9]) }, // not under m/
  ])
  t.same(Buffer.from((await s.maxValueSlice('m/', 1, 4))!), Buffer.from([0, 0, 1, 0]))
  t.same(Buffer.from((await s.maxValueSlice('m/', 4, 1))!), Buffer.from([255]))
  t.equal(await s.maxValueSlice('none/', 1, 4), undefined)

  // Every entry, in key order, as stored.
  const all: [string, Buffer][] = []
  for await (const [key, value] of s.entries()) all.push([key, Buffer.from(value)])
  t.equal(all.length, 700 + 10)
  t.same(
    all.map(([k]) => k),
    all.map(([k]) => k).sort(),
    'in key order',
  )
  t.same(all.find(([k]) => k === 'big/0007/deep/x')?.[1], v('big/0007/deep/x'))
  for await (const _ of s.entries()) break // leaving a walk early leaves the store usable
  t.same(Buffer.from((await s.get('n'))!), v('n'))
}

const makers: Record<string, (dir: string) => Storage> = {
  memory: () => new MemoryStorage(),
  sqlite: (dir) => new SqliteStorage(path.join(dir, 'store.db')),
}

for (const [name, make] of Object.entries(makers)) {
  t.test(name, async (t) => {
    const s = make(t.testdir())
    t.teardown(() => s.close())
    await contract(t, s)
  })
}

t.test('postgres', async (t) => {
  if (!havePostgres(t)) return
  const pg = await startPostgres(t)
  const s = new PostgresStorage({ url: await pg.createDatabase() })
  t.teardown(() => s.close())
  await contract(t, s)
})

t.test('sqlite: a second opener of the same file is refused', async (t) => {
  const file = path.join(t.testdir(), 'store.db')
  const s = new SqliteStorage(file)
  t.teardown(() => s.close())
  t.throws(() => new SqliteStorage(file), /in use by another secretfs process/)
})

t.test('sqlite: data survives close and reopen; the file is private', async (t) => {
  const file = path.join(t.testdir(), 'store.db')
  const s = new SqliteStorage(file)
  await s.put('k', Buffer.from('v'))
  await s.close()
  const { statSync } = await import('node:fs')
  t.equal(statSync(file).mode & 0o777, 0o600)
  const again = new SqliteStorage(file)
  t.teardown(() => again.close())
  t.same(Buffer.from((await again.get('k'))!), Buffer.from('v'))
})
