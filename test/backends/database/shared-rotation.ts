// Two daemons sharing one PostgreSQL store rotate the same passwords at the same moment, against a
// real PostgreSQL 15: a static role's (rotate-role on both at once, as a manual rotation meets the
// leader's scheduled one) and the configuration's own (rotate-root). Each rotation sets a password
// in the database and then stores it; run interleaved, the last one set would not be the last one
// stored, and the stored password would no longer log in. They take turns, so it always does.
// Each daemon's writes to the store are held back a random moment, so that without turns the
// order in which the two set their passwords and the order in which they store them often differ.
// A daemon whose lock is lost (its connection to the store ended) before it sets a password stops
// there: the other may be rotating it by then. One whose lock is lost while it sets a password
// cannot know whether another set one after it: a static role's is rotated once more, and a
// configuration's own (rotate-root) is stored only if it is the one that works.
import t, { type Test } from 'tap'
import { Core } from '../../../src/core/core.js'
import { encodeFields } from '../../../src/core/secret-data.js'
import { NAMED_LOCKS } from '../../../src/storage/postgres-schema.js'
import { PostgresStorage } from '../../../src/storage/postgres-storage.js'
import type { LockHeld, StorageOp } from '../../../src/storage/storage.js'
import { kind } from '../../helpers/error-match.js'
import { havePostgres, startPostgres } from '../../helpers/postgres.js'

const ROUNDS = 8
const unlock = { kind: 'key-file', key: Buffer.alloc(32, 5) } as const
const write = (core: Core, p: string, fields: Record<string, unknown> = {}) => core.write(p, encodeFields(fields))
const readJson = async <T>(core: Core, p: string) => JSON.parse(Buffer.from((await core.read(p)).value).toString()) as T

if (havePostgres(t)) {
  const pg = await startPostgres(t)
  const url = await pg.createDatabase()

  class SlowStorage extends PostgresStorage {
    /** Run before the next write, once. */
    beforeNextBatch?: () => Promise<void>

    override async batch(ops: StorageOp[], whileHeld?: LockHeld): Promise<void> {
      const before = this.beforeNextBatch
      this.beforeNextBatch = undefined
      await before?.()
      await new Promise((r) => setTimeout(r, Math.random() * 40))
      return super.batch(ops, whileHeld)
    }
  }
  const storages = new Map<Core, SlowStorage>()

  const core = async (t: Test, initialize: boolean) => {
    const storage = new SlowStorage({ url })
    const c = new Core({ storage })
    storages.set(c, storage)
    if (initialize) await c.initialize(unlock)
    await c.unseal(unlock)
    t.teardown(() => c.close())
    return c
  }

  /** Whether `check` holds within a few seconds (another daemon's change arrives by notification). */
  const soon = async (check: () => Promise<boolean>) => {
    for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 50)))
      if (await check().catch(() => false)) return true
    return false
  }
  const logsIn = async (user: string, password: string) =>
    (await pg.psql('SELECT current_user', { user, password })).stdout.trim() === user

  /**
   * Ends the connection of `c`'s named locks just before its next write made under one (a
   * rotation's first, its record of having begun), as the network or the server would end it.
   */
  const endLockConnectionAtNextWrite = (c: Core) => {
    const db = url.slice(url.lastIndexOf('/') + 1)
    const storage = storages.get(c)!
    const end = async (): Promise<void> => {
      const ended = await pg.query(
        `SELECT count(pg_terminate_backend(pid)) FROM pg_locks JOIN pg_stat_activity USING (pid)
         WHERE locktype = 'advisory' AND datname = '${db}' AND classid = ${NAMED_LOCKS}`,
      )
      if (ended === '0') storage.beforeNextBatch = end // a write under no lock: the next one
    }
    storage.beforeNextBatch = end
  }

  /** Runs `fn` before `c`'s `n`th write from now (1: the next). */
  const beforeWrite = (c: Core, n: number, fn: () => Promise<void>) => {
    storages.get(c)!.beforeNextBatch = n > 1 ? async () => beforeWrite(c, n - 1, fn) : fn
  }
  /** Ends the connection that holds the named locks, as the network or the server would. */
  const endLockConnection = () =>
    pg.query(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = ${NAMED_LOCKS}`)

  const a = await core(t, true)
  const b = await core(t, false)
  /** config/NAME on `a`: this PostgreSQL as `username` (its superuser unless given), with `more` fields. */
  const configure = (name: string, username = pg.superuser, password = pg.superPassword, more = {}) =>
    write(a, `database/config/${name}`, {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${pg.host}:${pg.port}/postgres`,
      username,
      password,
      allowed_roles: '*',
      ...more,
    })
  await a.mount('database', 'database')
  t.ok(await soon(async () => b.mounts().some((m) => m.path === 'database/')), 'the second daemon has the mount')

  t.test('rotate-role on two daemons at once leaves the stored password the one that works', async (t) => {
    await pg.query(`CREATE ROLE shared_app LOGIN PASSWORD 'initial'`)
    t.teardown(() => pg.query('DROP ROLE IF EXISTS shared_app'))
    await configure('pg')
    await write(a, 'database/static-roles/app', { db_name: 'pg', username: 'shared_app', rotation_period: '1h' })
    t.ok(await soon(async () => (await b.read('database/static-creds/app')) !== undefined), 'b has the role')
    for (let round = 1; round <= ROUNDS; round++) {
      await Promise.all([write(a, 'database/rotate-role/app'), write(b, 'database/rotate-role/app')])
      const { password } = await readJson<{ password: string }>(a, 'database/static-creds/app')
      t.ok(await logsIn('shared_app', password), `round ${round}: the stored password logs in`)
    }
  })

  t.test('rotate-root on two daemons at once leaves the configuration able to connect', async (t) => {
    await pg.query(`CREATE ROLE shared_root SUPERUSER LOGIN PASSWORD 'initial'`)
    t.teardown(() => pg.query('DROP ROLE IF EXISTS shared_root'))
    await configure('own', 'shared_root', 'initial')
    await write(a, 'database/roles/probe', { db_name: 'own', creation_statements: 'CREATE ROLE "{{name}}"' })
    t.ok(await soon(async () => (await b.read('database/config/own')) !== undefined), 'b has the configuration')
    for (let round = 1; round <= ROUNDS; round++) {
      await Promise.all([write(a, 'database/rotate-root/own'), write(b, 'database/rotate-root/own')])
      // Each daemon connects with the password stored last (a user is made and its lease revoked).
      for (const [name, c] of [['a', a] as const, ['b', b] as const]) {
        t.ok(
          await soon(async () => {
            const { lease } = await c.read('database/creds/probe')
            if (lease) await c.revokeLease(lease.id)
            return lease !== undefined
          }),
          `round ${round}: ${name} connects with the stored password`,
        )
      }
    }
  })

  t.test('a rotation whose lock is lost before it sets the password changes nothing', async (t) => {
    await pg.query(`CREATE ROLE lost_app LOGIN PASSWORD 'initial'`)
    t.teardown(() => pg.query('DROP ROLE IF EXISTS lost_app'))
    await configure('lost')
    await write(a, 'database/static-roles/lost', { db_name: 'lost', username: 'lost_app', rotation_period: '1h' })
    const stored = async () => (await readJson<{ password: string }>(a, 'database/static-creds/lost')).password
    const before = await stored()
    endLockConnectionAtNextWrite(a)
    await t.rejects(
      write(a, 'database/rotate-role/lost'),
      kind('busy', /lock on the change was lost/),
      'the rotation fails with busy',
    )
    t.equal(await stored(), before, 'the stored password is the one it was')
    t.ok(await logsIn('lost_app', before), 'and the database still has it')
    await write(a, 'database/rotate-role/lost')
    const after = await stored()
    t.not(after, before, 'tried again, it rotates')
    t.ok(await logsIn('lost_app', after), 'and the new password logs in')
  })

  t.test('a rotation whose lock is lost while it sets the password is made again, then stored', async (t) => {
    await pg.query(`CREATE ROLE late_app LOGIN PASSWORD 'initial'`)
    await pg.query('CREATE ROLE late_marker')
    t.teardown(() => pg.query('DROP ROLE IF EXISTS late_app; DROP ROLE IF EXISTS late_marker'))
    await configure('late')
    // While the database is given the password, the first time only (the marker is dropped below):
    // the lock's connection ends, and another daemon's password is set after this one's.
    const once = `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'late_marker') THEN
      CREATE ROLE late_marker;
      PERFORM pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = ${NAMED_LOCKS};
      ALTER ROLE late_app WITH PASSWORD 'another daemon''s';
    END IF; END $$`
    await write(a, 'database/static-roles/late', {
      db_name: 'late',
      username: 'late_app',
      rotation_period: '1h',
      rotation_statements: [`ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'`, once],
    })
    await pg.query('DROP ROLE late_marker')
    await write(a, 'database/rotate-role/late')
    const { password } = await readJson<{ password: string }>(a, 'database/static-creds/late')
    t.ok(await logsIn('late_app', password), 'the stored password is the one the database has')
    t.notOk(await logsIn('late_app', "another daemon's").catch(() => false), 'not the one set in between')
  })

  t.test('a rotation whose lock is lost just before it stores the password is made again', async (t) => {
    await pg.query(`CREATE ROLE fenced_app LOGIN PASSWORD 'initial'`)
    t.teardown(() => pg.query('DROP ROLE IF EXISTS fenced_app'))
    await configure('fenced')
    await write(a, 'database/static-roles/fenced', { db_name: 'fenced', username: 'fenced_app', rotation_period: '1h' })
    // After the database is given the password (the write-ahead record is the first write, the
    // password the second): the lock's connection ends, and another daemon sets one after.
    beforeWrite(a, 2, async () => {
      await endLockConnection()
      await pg.query(`ALTER ROLE fenced_app WITH PASSWORD 'another daemon''s'`)
    })
    await write(a, 'database/rotate-role/fenced')
    const { password } = await readJson<{ password: string }>(a, 'database/static-creds/fenced')
    t.ok(await logsIn('fenced_app', password), 'the stored password is the one the database has')
    t.notOk(await logsIn('fenced_app', "another daemon's").catch(() => false), 'not the one set in between')
  })

  t.test('a root rotation whose lock is lost just before it stores the password stores one that works', async (t) => {
    await pg.query(`CREATE ROLE fenced_root SUPERUSER LOGIN PASSWORD 'initial'`)
    t.teardown(() => pg.query('DROP ROLE IF EXISTS fenced_root'))
    await configure('fencedroot', 'fenced_root', 'initial')
    await write(a, 'database/roles/fencedprobe', {
      db_name: 'fencedroot',
      creation_statements: 'CREATE ROLE "{{name}}"',
    })
    // After the database is given the password: the lock's connection ends, and another password
    // (here the one stored) is set after this one's.
    beforeWrite(a, 2, async () => {
      await endLockConnection()
      await pg.query(`ALTER ROLE fenced_root WITH PASSWORD 'initial'`)
    })
    await write(a, 'database/rotate-root/fencedroot')
    t.ok(await logsIn('fenced_root', 'initial'), 'the database has the password set last')
    const { lease } = await a.read('database/creds/fencedprobe')
    t.ok(lease, 'and the configuration connects with the one it stored')
    if (lease) await a.revokeLease(lease.id)
  })

  t.test('a root rotation whose lock is lost before it sets the password changes nothing', async (t) => {
    await pg.query(`CREATE ROLE lost_root SUPERUSER LOGIN PASSWORD 'initial'`)
    t.teardown(() => pg.query('DROP ROLE IF EXISTS lost_root'))
    await configure('lostroot', 'lost_root', 'initial')
    endLockConnectionAtNextWrite(a)
    await t.rejects(
      write(a, 'database/rotate-root/lostroot'),
      kind('busy', /lock on the change was lost/),
      'the rotation fails with busy',
    )
    t.ok(await logsIn('lost_root', 'initial'), 'the database still has the password the configuration has')
    await write(a, 'database/rotate-root/lostroot')
    t.notOk(await logsIn('lost_root', 'initial').catch(() => false), 'tried again, it rotates')
  })
  t.test('a root rotation whose lock is lost while it sets the password stores one that works', async (t) => {
    await pg.query(`CREATE ROLE late_root SUPERUSER LOGIN PASSWORD 'initial'`)
    t.teardown(() => pg.query('DROP ROLE IF EXISTS late_root'))
    // While the database is given the password: the lock's connection ends, and another password
    // (here the one stored) is set after this one's.
    const meanwhile = `DO $$ BEGIN
      PERFORM pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = ${NAMED_LOCKS};
      ALTER ROLE late_root WITH PASSWORD 'initial';
    END $$`
    await configure('lateroot', 'late_root', 'initial', {
      root_rotation_statements: [`ALTER USER "{{username}}" WITH PASSWORD '{{password}}'`, meanwhile],
    })
    await write(a, 'database/roles/lateprobe', { db_name: 'lateroot', creation_statements: 'CREATE ROLE "{{name}}"' })
    await write(a, 'database/rotate-root/lateroot')
    t.ok(await logsIn('late_root', 'initial'), 'the database has the password set last')
    const { lease } = await a.read('database/creds/lateprobe')
    t.ok(lease, 'and the configuration connects with the one it stored')
    if (lease) await a.revokeLease(lease.id)
  })
}
