// The database backend against a real PostgreSQL 15: users made on read that can do what the
// creation statements granted and nothing else, shown with psql; revoke, expiry and unmount that
// drop them and end their sessions; renewals that move VALID UNTIL; failures that report
// PostgreSQL's reason and leave no role behind; recovery of users a write-ahead record names.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { BarrierView } from '../../../src/barrier/barrier-view.js'
import { DatabaseBackend } from '../../../src/backends/database/backend.js'
import { listWal, putWal } from '../../../src/backends/framework/wal.js'
import { Core, builtinBackends } from '../../../src/core/core.js'
import { dataPrefix, type MountEntry } from '../../../src/core/mount-table.js'
import { encodeFields } from '../../../src/core/secret-data.js'
import { MemoryStorage } from '../../../src/storage/memory-storage.js'
import { makeDatabaseBackend } from '../../../src/backends/database/backend.js'
import { kind } from '../../helpers/error-match.js'
import { havePostgres, startPostgres, type Postgres } from '../../helpers/postgres.js'

interface Creds {
  username: string
  password: string
}

const write = (core: Core, p: string, fields: Record<string, unknown>) => core.write(p, encodeFields(fields))
const readJson = async (core: Core, p: string) => JSON.parse(Buffer.from((await core.read(p)).value).toString())

const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON app.visible TO "{{name}}";`

if (havePostgres(t)) {
  const pg = await startPostgres(t)
  await pg.query(`
    CREATE SCHEMA app;
    CREATE TABLE app.visible (v text); INSERT INTO app.visible VALUES ('hello');
    CREATE TABLE app.hidden (v text); INSERT INTO app.hidden VALUES ('secret');
    GRANT USAGE ON SCHEMA app TO PUBLIC;
    CREATE SEQUENCE app.counter;
    CREATE FUNCTION app.answer() RETURNS int LANGUAGE sql AS 'SELECT 42';
  `)

  const config = (p: Postgres = pg) => ({
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@${p.host}:${p.port}/postgres?sslmode=disable`,
    username: p.superuser,
    password: p.superPassword,
    allowed_roles: 'readonly,broken,slow',
  })

  const madeRoles = () => pg.madeUsers()

  const asUser = (c: Creds, sql: string) => pg.psql(sql, { user: c.username, password: c.password })

  async function setup(t: Test, options: { ttl?: string } = {}) {
    const core = await Core.dev({
      backends: { ...builtinBackends, database: makeDatabaseBackend({ timeouts: { connect: 2000, query: 5000 } }) },
    })
    // Unmounting drops what the test made, so that each test starts with no users.
    t.teardown(async () => {
      await core.unmount('database').catch(() => {})
      await core.close()
    })
    const entry = await core.mount('database', 'database')
    await write(core, 'database/config/pg', config())
    await write(core, 'database/roles/readonly', {
      db_name: 'pg',
      creation_statements: CREATE,
      default_ttl: options.ttl ?? '1h',
      max_ttl: '24h',
    })
    return { core, entry }
  }

  t.test('a read makes a user that can do what it was granted and nothing else', async (t) => {
    const { core } = await setup(t)
    const r = await core.read('database/creds/readonly')
    t.ok(r.lease, 'it is leased')
    t.equal(r.lease!.renewable, true)
    const c = JSON.parse(Buffer.from(r.value).toString()) as Creds
    t.match(c.username, /^v-secretfs-readonly-[A-Za-z0-9]{20}-\d{10}$/, "Vault's user name shape")
    t.ok(c.username.length <= 63)
    t.match(c.password, /^[A-Za-z0-9]{32}$/, 'a strong generated password')
    t.equal((await asUser(c, 'SELECT v FROM app.visible')).stdout.trim(), 'hello', 'it reads what it was granted')
    const hidden = await asUser(c, 'SELECT v FROM app.hidden')
    t.not(hidden.status, 0)
    t.match(hidden.stderr, /permission denied/, 'and nothing else')
    t.match((await asUser(c, "INSERT INTO app.visible VALUES ('x')")).stderr, /permission denied/)
    t.match((await asUser({ ...c, password: 'wrong' }, 'SELECT 1')).stderr, /password authentication failed/)
    const until = await pg.query(
      `SELECT rolvaliduntil > now() + interval '59 minutes' FROM pg_roles WHERE rolname = '${c.username}'`,
    )
    t.equal(until, 't', 'VALID UNTIL is the lease end')
    const second = JSON.parse(Buffer.from((await core.read('database/creds/readonly')).value).toString()) as Creds
    t.not(second.username, c.username, 'each read makes a new user')
    t.same(await core.list('database/creds'), ['readonly'])
  })

  t.test('revoke drops the user and ends its open sessions', async (t) => {
    const { core } = await setup(t)
    const r = await core.read('database/creds/readonly')
    const c = JSON.parse(Buffer.from(r.value).toString()) as Creds
    // A session that stays open: psql waiting on stdin.
    const session = spawn(
      '/usr/lib/postgresql/15/bin/psql',
      ['-X', '-h', pg.host, '-p', String(pg.port), '-U', c.username, 'postgres'],
      {
        env: { PATH: process.env.PATH, PGPASSWORD: c.password, PGCONNECT_TIMEOUT: '5' },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    )
    t.teardown(() => void session.kill('SIGKILL'))
    const ended = new Promise<number | null>((resolve) => session.once('exit', (code) => resolve(code)))
    let connected = false
    for (let i = 0; i < 100 && !connected; i++) {
      connected = (await pg.query(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${c.username}'`)) === '1'
      if (!connected) await new Promise((r) => setTimeout(r, 100))
    }
    t.ok(connected, 'the user has a session open')
    await core.revokeLease(r.lease!.id)
    session.stdin.write('SELECT 1;\n')
    const code = await Promise.race([ended, new Promise((r) => setTimeout(() => r('still running'), 10_000))])
    t.not(code, 'still running', 'the open session was ended')
    t.equal(await pg.query(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${c.username}'`), '0')
    t.same(await madeRoles(), [], 'the role is gone')
    t.match((await asUser(c, 'SELECT 1')).stderr, /password authentication failed|does not exist/, 'it cannot log in')
  })

  t.test('renew moves VALID UNTIL; expiry drops the user by itself', async (t) => {
    const { core } = await setup(t, { ttl: '3s' })
    const r = await core.read('database/creds/readonly')
    const c = JSON.parse(Buffer.from(r.value).toString()) as Creds
    const validUntil = () =>
      pg.query(`SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles WHERE rolname = '${c.username}'`)
    const before = Number(await validUntil())
    await core.renewLease(r.lease!.id, 600)
    const after = Number(await validUntil())
    t.ok(after - before > 500, `renew moved VALID UNTIL by ${after - before}s`)
    const short = await core.read('database/creds/readonly')
    const s = JSON.parse(Buffer.from(short.value).toString()) as Creds
    t.equal((await asUser(s, 'SELECT 1')).status, 0)
    for (let i = 0; i < 100 && (await madeRoles()).includes(s.username); i++)
      await new Promise((r) => setTimeout(r, 100))
    t.notOk((await madeRoles()).includes(s.username), 'expiry dropped the user')
    t.ok((await madeRoles()).includes(c.username), 'the renewed one lives on')
  })

  t.test('concurrent reads and revocations of users granted the same objects', async (t) => {
    const { core } = await setup(t)
    // Every user's grants rewrite the same catalog rows: PostgreSQL refuses two such transactions
    // at once, so the backend must run them in turn.
    await write(core, 'database/roles/readonly', {
      creation_statements: [
        CREATE,
        'GRANT USAGE ON SCHEMA app TO "{{name}}"; GRANT CONNECT ON DATABASE postgres TO "{{name}}"',
        'GRANT SELECT (v) ON app.hidden TO "{{name}}"; GRANT USAGE ON SEQUENCE app.counter TO "{{name}}"',
        'GRANT EXECUTE ON FUNCTION app.answer() TO "{{name}}"',
      ],
    })
    const made = await Promise.all(Array.from({ length: 12 }, () => core.read('database/creds/readonly')))
    t.equal((await madeRoles()).length, 12, 'twelve reads at once, twelve users')
    const c = JSON.parse(Buffer.from(made[0]!.value).toString()) as Creds
    t.equal((await asUser(c, 'SELECT v FROM app.hidden')).stdout.trim(), 'secret', 'a column privilege')
    t.equal(await core.revokeLeasePrefix('database/'), 12)
    t.same(await madeRoles(), [], 'revoked at once, every one dropped with all it was granted')
  })

  t.test('unmount drops every user the mount made', async (t) => {
    const { core } = await setup(t)
    for (let i = 0; i < 3; i++) await core.read('database/creds/readonly')
    t.equal((await madeRoles()).length, 3)
    await core.unmount('database')
    t.same(await madeRoles(), [])
  })

  t.test('a creation statement that fails gives PostgreSQL reason, runs rollback, leaves no role', async (t) => {
    const { core, entry } = await setup(t)
    await pg.query('CREATE TABLE app.rollback_log (v text)')
    t.teardown(() => pg.query('DROP TABLE app.rollback_log'))
    await write(core, 'database/roles/broken', {
      db_name: 'pg',
      creation_statements: [
        `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'`,
        'GRANT SELECT ON app.no_such_table TO "{{name}}"',
      ],
      rollback_statements: `INSERT INTO app.rollback_log VALUES ('rolled back')`,
    })
    const err = await core.read('database/creds/broken').catch((e: Error) => e)
    t.match(
      err,
      kind('upstream', /PostgreSQL: running creation_statements failed: relation "app.no_such_table" does not exist/),
    )
    t.notMatch((err as Error).message, /v-secretfs|at .*\.js/, 'no user name, no stack trace')
    t.same(await madeRoles(), [], 'no role left behind')
    t.equal(await pg.query('SELECT v FROM app.rollback_log'), 'rolled back', 'rollback_statements ran')
    t.same(await listWal(new BarrierView(core.barrier, dataPrefix(entry))), [], 'no write-ahead record left')
  })

  t.test('configuration: verified, never shows the password, refuses what could break a statement', async (t) => {
    const { core } = await setup(t)
    const shown = await readJson(core, 'database/config/pg')
    t.equal(shown.plugin_name, 'postgresql-database-plugin')
    t.equal(shown.connection_details.username, 'postgres')
    t.notMatch(JSON.stringify(shown), pg.superPassword, 'the password is never shown')
    await t.rejects(
      write(core, 'database/config/bad', { ...config(), password: 'wrong' }),
      kind('invalid', /verify_connection.*password authentication failed/),
    )
    t.same(await core.list('database/config'), ['pg'], 'a config that cannot connect is not stored')
    await t.rejects(
      write(core, 'database/config/bad', {
        ...config(),
        connection_url: `postgresql://postgres:${pg.superPassword}@${pg.host}:${pg.port}/postgres`,
      }),
      kind('invalid', /holds a password/),
    )
    await t.rejects(
      write(core, 'database/config/bad', { ...config(), plugin_name: 'mysql-database-plugin' }),
      kind('invalid'),
    )
    await t.rejects(
      write(core, 'database/config/bad', { ...config(), username: `x"; DROP TABLE app.visible; --` }),
      kind('invalid'),
    )
    await t.rejects(write(core, `database/config/a"b`, config()), kind('invalid'), 'a hostile config name')
    await t.rejects(write(core, `database/roles/x'y`, { db_name: 'pg', creation_statements: CREATE }), kind('invalid'))
    await t.rejects(
      write(core, 'database/roles/odd', {
        db_name: 'pg',
        creation_statements: `CREATE ROLE "{{name}}" PASSWORD '{{secret}}'`,
      }),
      kind('invalid', /placeholder/),
    )
    await t.rejects(write(core, 'database/roles/odd', { db_name: 'pg' }), kind('invalid', /creation_statements/))
    await write(core, 'database/roles/other', { db_name: 'pg', creation_statements: CREATE })
    await t.rejects(
      core.read('database/creds/other'),
      kind('invalid', /allowed_roles/),
      'a role not allowed by the config',
    )
    // A write keeps the fields it does not give.
    await write(core, 'database/config/pg', { allowed_roles: 'readonly,other' })
    t.ok(await core.read('database/creds/other'), 'allowed now, and the connection fields were kept')
  })

  t.test('a database that is down: a clear error in bounded time, and the daemon stays up', async (t) => {
    const { core } = await setup(t)
    await core.read('database/creds/readonly') // a pool with a connection in it
    await pg.stop()
    t.teardown(() => pg.start())
    const started = Date.now()
    await t.rejects(core.read('database/creds/readonly'), kind('upstream', /PostgreSQL: .*(refused|terminat|connect)/))
    t.ok(Date.now() - started < 10_000, `failed within ${Date.now() - started} ms`)
    await pg.start()
    const c = JSON.parse(Buffer.from((await core.read('database/creds/readonly')).value).toString()) as Creds
    t.equal((await asUser(c, 'SELECT 1')).status, 0, 'it works again once PostgreSQL is back')
  })

  t.test('connection pools are closed on unmount and seal', async (t) => {
    const connections = () => pg.query(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'secretfs'`)
    const until = async (want: string) => {
      for (let i = 0; i < 50 && (await connections()) !== want; i++) await new Promise((r) => setTimeout(r, 100))
      return connections()
    }
    for (const end of ['unmount', 'seal'] as const) {
      const { core } = await setup(t)
      await Promise.all([1, 2, 3].map(() => core.read('database/creds/readonly')))
      t.not(await connections(), '0', 'reads opened connections')
      if (end === 'unmount') await core.unmount('database')
      else {
        await core.revokeLeasePrefix('database/')
        core.seal()
      }
      t.equal(await until('0'), '0', `${end} closed them`)
    }
  })

  t.test('recover() drops users that write-ahead records name', async (t) => {
    const { core, entry } = await setup(t)
    const storage = new BarrierView(core.barrier, dataPrefix(entry))
    await pg.query(`CREATE ROLE "v-secretfs-readonly-halfmadehalfmadehalf-1700000000" LOGIN PASSWORD 'x'`)
    await putWal(storage, {
      kind: 'creds',
      db_name: 'pg',
      username: 'v-secretfs-readonly-halfmadehalfmadehalf-1700000000',
    })
    await putWal(storage, {
      kind: 'creds',
      db_name: 'pg',
      username: 'v-secretfs-readonly-nevermadenevermadenev-1700000000',
    })
    const backend = new DatabaseBackend({
      storage,
      leases: {
        register: () => Promise.reject(new Error('no')),
        revoke: async () => {},
        ttls: () => ({ ttl: 60, max: 60 }),
      },
      mount: () => entry as MountEntry,
      maxValueSize: 1 << 20,
    })
    t.teardown(() => backend.close())
    await backend.recover()
    t.same(await madeRoles(), [])
    t.same(await listWal(storage), [])
  })

  t.test('the mount through a fresh store: config, roles and creds survive a restart of the core', async (t) => {
    const unlock = { kind: 'key-file', key: Buffer.alloc(32, 7) } as const
    const core = new Core({ storage: new MemoryStorage() })
    await core.initialize(unlock)
    await core.unseal(unlock)
    await core.mount('database', 'database')
    await write(core, 'database/config/pg', config())
    await write(core, 'database/roles/readonly', { db_name: 'pg', creation_statements: CREATE })
    const r = await core.read('database/creds/readonly')
    core.seal()
    await core.unseal(unlock)
    t.teardown(() => core.close())
    t.equal((await core.leases('database/')).length, 1, 'the lease was restored')
    await core.revokeLease(r.lease!.id)
    t.same(await madeRoles(), [])
  })
}
