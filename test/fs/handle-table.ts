// The table of open files on its own: one shared file per path, renames, orphans, limits, and the
// re-read of a path that changed while an open was reading it.
import t from 'tap'
import { FileHandle } from '../../src/fs/file-handle.js'
import { HandleTable } from '../../src/fs/handle-table.js'
import { MemoryBudget } from '../../src/fs/memory-budget.js'
import { OpenFile } from '../../src/fs/open-file.js'
import { kind } from '../helpers/error-match.js'

const budget = () => new MemoryBudget(1 << 20)
const file = (path: string, content = '', b = budget()) =>
  new OpenFile(path, Buffer.from(content), b, { shared: true, created: new Date(), modified: new Date() })

t.test('handles count per file; a limit refuses one more with ENFILE', async (t) => {
  const table = new HandleTable(2)
  const f = file('secret/a')
  const one = table.add(new FileHandle(f, { writable: false }))
  table.add(new FileHandle(f, { writable: true }))
  t.equal(f.handles, 2)
  t.throws(() => table.add(new FileHandle(f, { writable: false })), { name: 'Error', errno: 'ENFILE' })
  table.remove(one)
  t.equal(f.handles, 1)
  t.ok(table.add(new FileHandle(f, { writable: false })), 'room again')
})

t.test('move rekeys what is open beneath; what was open at the target is let go', async (t) => {
  const table = new HandleTable()
  const a = file('secret/d/a')
  const deep = file('secret/d/e/f')
  const target = file('secret/x')
  const other = file('secret/dd')
  for (const f of [a, deep, target, other]) table.register(f)
  table.move('secret/d', 'secret/x')
  t.equal(table.file('secret/x/a'), a)
  t.equal(a.path, 'secret/x/a')
  t.equal(table.file('secret/x/e/f'), deep)
  t.equal(table.file('secret/d/a'), undefined)
  t.ok(target.orphaned, 'the file at the target was replaced')
  t.equal(table.file('secret/dd'), other, "a sibling that only shares the prefix's letters stays")
  t.notOk(other.orphaned)
  table.orphanUnder('secret/x')
  t.ok(a.orphaned && deep.orphaned)
  t.equal(table.filesUnder('').length, 1, "'' holds everything: only secret/dd is left")
})

t.test('a load is repeated when the path changed while it read', async (t) => {
  const table = new HandleTable()
  let reads = 0
  const disposed: number[] = []
  const value = await table.load(
    'secret/a',
    async () => {
      const n = ++reads
      if (n === 1) table.committed('secret/a') // a writer's commit lands mid-read
      return n
    },
    (n) => disposed.push(n),
  )
  t.same([value, reads, disposed], [2, 2, [1]], 'the stale read was thrown away')
  t.equal(
    await table.load(
      'secret/a',
      async () => 7,
      () => t.fail('nothing changed'),
    ),
    7,
  )
})

t.test('an open file zeroes what it held, and is charged against the budget', async (t) => {
  const b = new MemoryBudget(100)
  const content = Buffer.from('secret content')
  const f = new OpenFile('secret/a', content, b, { shared: true, created: new Date(), modified: new Date() })
  t.equal(b.used, content.length)
  f.write(Buffer.from('x'.repeat(50)), 50, 0, false)
  t.ok(
    content.every((byte) => byte === 0),
    'the old buffer was zeroed when it grew',
  )
  t.throws(
    () => f.write(Buffer.alloc(200), 200, 0, false),
    { name: 'Error', errno: 'ENOMEM' },
    'ENOMEM past the budget',
  )
  f.dispose()
  t.equal(b.used, 0)
  const dead = file('secret/b', 'zzz')
  dead.kill()
  t.throws(() => dead.read(Buffer.alloc(3), 3, 0), kind('sealed'))
})
