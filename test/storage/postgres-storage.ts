// The PostgreSQL store on a real PostgreSQL 15: its schema made once by daemons starting together
// and refused when newer, other daemons' changes reported (and what was missed, as `all`), and a
// server that stops and starts again: clear errors while it is down, no acknowledged write lost.
import t, { type Test } from 'tap'
import { PostgresStorage, type PostgresTimings } from '../../src/storage/postgres-storage.js'
import type { LockHeld, StorageChange } from '../../src/storage/storage.js'
import { kind } from '../helpers/error-match.js'
import { havePostgres, startPostgres, type Postgres } from '../helpers/postgres.js'

if (!havePostgres(t)) process.exit(0)
t.setTimeout(300_000)

const fast: Partial<PostgresTimings> = {
  connect: 2_000,
  statement: 5_000,
  poll: 200,
  reconnectMin: 100,
  reconnectMax: 500,
}
const v = (s: string) => Buffer.from(s)
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString())

function store(t: Test, url: string, timings: Partial<PostgresTimings> = fast): PostgresStorage {
  const s = new PostgresStorage({ url, timings })
  t.teardown(() => s.close())
  return s
}

/** Every change `s` reports, from now on. */
function recorder(t: Test, s: PostgresStorage): StorageChange[] {
  const seen: StorageChange[] = []
  t.teardown(s.watch((c) => seen.push(c)))
  return seen
}

async function until(what: string, ok: () => boolean, ms = 5_000): Promise<number> {
  const started = Date.now()
  while (!ok()) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return Date.now() - started
}

/** Waits until `s`'s watcher listens (a write from another store is heard). */
async function listening(from: PostgresStorage, seen: StorageChange[]): Promise<void> {
  const started = Date.now()
  while (Date.now() - started < 10_000) {
    await from.put('probe', v('x'))
    const heard = await until('probe heard', () => seen.length > 0, 300).catch(() => undefined)
    if (heard !== undefined) {
      seen.length = 0
      return
    }
  }
  throw new Error('the watcher never listened')
}

const pg: Postgres = await startPostgres(t)

t.test('two daemons starting at once on an empty database make the schema once', async (t) => {
  const url = await pg.createDatabase()
  const stores = Array.from({ length: 4 }, () => store(t, url))
  await Promise.all(stores.map((s, i) => s.put(`k${i}`, v(`v${i}`))))
  for (const [i, s] of stores.entries()) t.equal(text(await s.get(`k${(i + 1) % 4}`)), `v${(i + 1) % 4}`)
  const db = url.slice(url.lastIndexOf('/') + 1)
  t.equal(await pg.query('SELECT schema_version FROM secretfs_meta', { database: db }), '1')
  t.equal(await pg.query('SELECT count(*) FROM secretfs_meta', { database: db }), '1', 'one meta row')
  t.equal(
    await pg.query(
      `SELECT collation_name FROM information_schema.columns WHERE table_name = 'secretfs_entries' AND column_name = 'key'`,
      { database: db },
    ),
    'C',
    'keys sort bytewise',
  )
})

t.test('a store of a newer schema version is refused, with a message that says so', async (t) => {
  const url = await pg.createDatabase()
  await store(t, url).put('k', v('v'))
  await pg.query('UPDATE secretfs_meta SET schema_version = 99', { database: url.slice(url.lastIndexOf('/') + 1) })
  const newer = store(t, url)
  await t.rejects(
    newer.get('k'),
    kind('unsupported', /the PostgreSQL store has schema version 99, and this secretfs knows only version 1/),
  )
  await t.rejects(newer.put('k', v('w')), kind('unsupported'), 'nor written')
})

t.test("another store's writes are reported: keys and prefixes, never one's own", async (t) => {
  const url = await pg.createDatabase()
  const a = store(t, url)
  const b = store(t, url)
  const seenByA = recorder(t, a)
  const seenByB = recorder(t, b)
  await listening(a, seenByB)
  seenByA.length = 0

  await a.put('one', v('1'))
  await a.batch([
    { op: 'delete', key: 'two' },
    { op: 'delete-prefix', prefix: 'dir/' },
    { op: 'put', key: 'three', value: v('3') },
  ])
  await until('two changes heard', () => seenByB.length >= 2)
  t.same(seenByB, [
    { keys: ['one'], prefixes: [] },
    { keys: ['two', 'three'], prefixes: ['dir/'] },
  ])

  // Too many keys for one notification: the change says only that anything may have changed.
  const many = Array.from({ length: 400 }, (_, i) => ({
    op: 'put' as const,
    key: `many/${i}/`.padEnd(40, 'x'),
    value: v('x'),
  }))
  await a.batch(many)
  await until('the big batch heard', () => seenByB.length >= 3)
  t.same(seenByB[2], { all: true })
  await new Promise((r) => setTimeout(r, 1_000)) // several polls: nothing was missed
  t.equal(seenByB.length, 3, 'notified changes are not reported again as missed')
  t.same(seenByA, [], "a store's own writes are never reported to it")

  await b.put('from-b', v('b'))
  await until('A hears B', () => seenByA.length === 1)
  t.same(seenByA, [{ keys: ['from-b'], prefixes: [] }])
})

t.test('a LISTEN connection killed by the server is opened again and reports all', async (t) => {
  const url = await pg.createDatabase()
  const db = url.slice(url.lastIndexOf('/') + 1)
  const a = store(t, url)
  const b = store(t, url)
  const seen = recorder(t, b)
  await listening(a, seen)
  const killed = await pg.query(
    `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
     WHERE datname = '${db}' AND (query LIKE 'LISTEN %' OR query LIKE 'SELECT changes FROM %')`,
  )
  t.equal(killed, '1', 'the one listening connection was terminated')
  const took = await until('all after reconnecting', () => seen.some((c) => 'all' in c))
  t.ok(took < 3_000, `reported within ${took} ms`)
  seen.length = 0
  await a.put('after', v('x'))
  await until('a change heard again', () => seen.length > 0)
  t.same(seen, [{ keys: ['after'], prefixes: [] }], 'and changes are heard as before')
})

t.test('a change made after what a watcher loaded, before it listened, is reported as all', async (t) => {
  const url = await pg.createDatabase()
  const a = store(t, url)
  const b = store(t, url)
  await b.put('k', v('before'))
  const since = await b.changes() // as a daemon does before it loads what it holds
  await a.put('k', v('between')) // before b listens: no notification reaches it
  const seen: StorageChange[] = []
  t.teardown(b.watch((c) => seen.push(c), since))
  await until('all, from the counter', () => seen.some((c) => 'all' in c))
  t.same(seen, [{ all: true }])

  // Without a change in between, nothing is reported.
  const c = store(t, url)
  const quiet: StorageChange[] = []
  t.teardown(c.watch((change) => quiet.push(change), await c.changes()))
  await new Promise((r) => setTimeout(r, 3 * 200 + 500))
  t.same(quiet, [], 'nothing missed, nothing reported')
})

t.test('a change whose notification was lost is noticed by the change counter', async (t) => {
  const url = await pg.createDatabase()
  const db = url.slice(url.lastIndexOf('/') + 1)
  const a = store(t, url)
  const b = store(t, url)
  const seen = recorder(t, b)
  await listening(a, seen)
  // A write that bumps the counter but notifies no one (as if the notification were lost).
  await pg.query(
    `BEGIN; INSERT INTO secretfs_entries VALUES ('sneaky', '\\x00'); UPDATE secretfs_meta SET changes = changes + 1; COMMIT;`,
    { database: db },
  )
  const took = await until('all from the counter', () => seen.some((c) => 'all' in c))
  t.ok(took <= 2 * 200 + 500, `reported within two polls (${took} ms)`)
  t.same(seen, [{ all: true }])
})

t.test(
  'a named lock is held by one store at a time, waited for a bounded time, and freed with its connection',
  async (t) => {
    const url = await pg.createDatabase()
    const db = url.slice(url.lastIndexOf('/') + 1)
    const a = store(t, url)
    const b = store(t, url, { ...fast, statement: 600 })
    const order: string[] = []
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const first = a.locked(7, async () => {
      order.push('a in')
      await held
      order.push('a out')
    })
    await until('a holds it', () => order.length > 0)
    const started = Date.now()
    await t.rejects(
      b.locked(7, async () => void order.push('b in')),
      kind('busy', /another secretfs daemon/),
    )
    t.ok(Date.now() - started >= 600, 'b waited for it as long as a statement may take, then gave up')
    t.equal(await b.locked(8, async () => 'other'), 'other', 'another lock is free meanwhile')
    const second = b.locked(7, async () => void order.push('b in'))
    await new Promise((r) => setTimeout(r, 150))
    release()
    await Promise.all([first, second])
    t.same(order, ['a in', 'a out', 'b in'], 'b had it once a let it go')

    // Callers in one store take turns too (the server's locks are per connection, which they share).
    const turns: string[] = []
    const step = (name: string) => async () => {
      turns.push(`${name} in`)
      await new Promise((r) => setTimeout(r, 30))
      turns.push(`${name} out`)
    }
    await Promise.all([a.locked(9, step('x')), a.locked(9, step('y'))])
    t.same(turns, ['x in', 'x out', 'y in', 'y out'])
    await t.rejects(
      a.locked(9, async () => {
        throw new Error('what fn throws')
      }),
      /what fn throws/,
      "what the caller's work throws is passed on as it is",
    )

    // A write under a lock lands while the lock is held (a negative id: the server lists it as an oid).
    await a.locked(-11, (held) => a.batch([{ op: 'put', key: 'locked/1', value: v('while held') }], held))
    t.equal(text(await b.get('locked/1')), 'while held', 'a write under a lock held is stored')

    // A holder whose connection ends (a daemon killed) holds it no longer, and is told so.
    let heldByA: LockHeld | undefined
    let finish!: () => void
    const holding = a.locked(10, async (held) => {
      await held()
      heldByA = held
      await new Promise<void>((r) => (finish = r))
    })
    await until('a holds it, and knows it', () => heldByA !== undefined)
    const killed = await pg.query(
      `SELECT count(pg_terminate_backend(pid)) FROM pg_locks JOIN pg_stat_activity USING (pid)
     WHERE locktype = 'advisory' AND datname = '${db}' AND objid = 10`,
    )
    t.equal(killed, '1', "the connection holding a's lock was ended")
    t.equal(await b.locked(10, async () => 'had'), 'had', 'b has it at once')
    await t.rejects(heldByA!(), kind('busy', /lock on the change was lost/), 'a is told that its lock is gone')
    // Writes under the lost lock are refused; those of others queued with them are not.
    const others = a.put('locked/3', v('under no lock'))
    await t.rejects(
      a.batch([{ op: 'put', key: 'locked/2', value: v('too late') }], heldByA),
      kind('busy', /lock on the change was lost/),
      'a write under the lost lock fails',
    )
    await others
    t.equal(await b.get('locked/2'), undefined, 'and stores nothing')
    t.equal(text(await b.get('locked/3')), 'under no lock', 'a write under no lock beside it is stored')
    finish()
    await holding
    await t.rejects(
      a.batch([{ op: 'put', key: 'locked/2', value: v('after') }], heldByA),
      kind('busy', /lock on the change was lost/),
      'so does one under a lock let go',
    )
    t.equal(await a.locked(10, async () => 'again'), 'again', 'a takes it again, on a new connection')
  },
)

t.test('a stopped server fails calls clearly and at once; started again, all works as before', async (t) => {
  const url = await pg.createDatabase()
  const s = store(t, url)
  const other = store(t, url)
  const seen = recorder(t, other)
  await listening(s, seen)

  // Writes under way while the server stops: every one that resolved must be there afterwards.
  const acked = new Set<number>()
  let n = 0
  let writing = true
  const writer = (async () => {
    while (writing) {
      const i = n++
      await s.put(`load/${i}`, v(`value ${i}`)).then(
        () => acked.add(i),
        () => {},
      )
    }
  })()
  await until('some writes done', () => acked.size > 20)
  await pg.stop()
  const before = acked.size

  const started = Date.now()
  const failure = await s.get('load/0').catch((e: unknown) => e)
  t.ok(Date.now() - started < fast.connect! + 1_000, 'a read fails within the connect timeout')
  t.match(failure, kind('unavailable', /^the PostgreSQL store is unreachable: /))
  t.notMatch(String((failure as Error).message), pg.superPassword, 'the message holds no password')
  await t.rejects(s.put('down', v('x')), kind('unavailable'), 'a write fails too')
  await t.rejects(s.list(''), kind('unavailable'))

  await pg.start()
  writing = false
  await writer
  t.ok(acked.size >= before, 'writes went on failing or succeeding; none hung')
  t.equal(text(await s.get('load/0')), 'value 0', 'a read works again, with nothing restarted')
  await s.put('up', v('y'))
  t.equal(text(await s.get('up')), 'y', 'and a write')
  const ids = [...acked]
  const values = await Promise.all(ids.map((i) => s.get(`load/${i}`)))
  t.equal(
    values.filter((x, j) => text(x) !== `value ${ids[j]}`).length,
    0,
    `every one of the ${acked.size} acknowledged writes is there`,
  )
  await until('the watcher reports all after the outage', () => seen.some((c) => 'all' in c), 10_000)
})
