// Passwords that secretfs rotates, against a real PostgreSQL 15: a static role's user, on a
// schedule and on demand, and the configuration's own user (rotate-root), shown with psql; and
// recovery of rotations a crash interrupted.
import t, { type Test } from 'tap'
import { BarrierView } from '../../../src/barrier/barrier-view.js'
import { DatabaseBackend } from '../../../src/backends/database/backend.js'
import { listWal, putWal } from '../../../src/backends/framework/wal.js'
import { DatabaseState } from '../../../src/backends/database/state.js'
import { DEFAULT_PG_TIMEOUTS } from '../../../src/backends/database/postgres.js'
import { Core } from '../../../src/core/core.js'
import { dataPrefix, type MountEntry } from '../../../src/core/mount-table.js'
import { encodeFields } from '../../../src/core/secret-data.js'
import { kind } from '../../helpers/error-match.js'
import { havePostgres, startPostgres } from '../../helpers/postgres.js'

interface StaticCreds {
  username: string
  password: string
  last_vault_rotation: string
  rotation_period: number
  ttl: number
}

const write = (core: Core, p: string, fields: Record<string, unknown> = {}) => core.write(p, encodeFields(fields))
const readJson = async <T>(core: Core, p: string) => JSON.parse(Buffer.from((await core.read(p)).value).toString()) as T
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

if (havePostgres(t)) {
  const pg = await startPostgres(t)
  let serial = 0

  /** A database user of this test's own, with a known password. */
  async function dbUser(t: Test, options: { superuser?: boolean } = {}) {
    const name = `user${++serial}`
    const password = `initial${serial}`
    await pg.query(`CREATE ROLE ${name} ${options.superuser ? 'SUPERUSER' : ''} LOGIN PASSWORD '${password}'`)
    t.teardown(() => pg.query(`DROP ROLE IF EXISTS ${name}`))
    return { name, password }
  }

  const logsIn = async (user: string, password: string) =>
    (await pg.psql('SELECT current_user', { user, password })).stdout.trim() === user

  /** Writes config/pg: the server, as `root`. */
  const configure = (core: Core, root = { name: pg.superuser, password: pg.superPassword }) =>
    write(core, 'database/config/pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${pg.host}:${pg.port}/postgres`,
      username: root.name,
      password: root.password,
      allowed_roles: '*',
    })

  async function setup(t: Test, root = { name: pg.superuser, password: pg.superPassword }) {
    const core = await Core.dev()
    t.teardown(async () => {
      await core.unmount('database').catch(() => {})
      await core.close()
    })
    const entry = await core.mount('database', 'database')
    await configure(core, root)
    return { core, entry, storage: new BarrierView(core.barrier, dataPrefix(entry)) }
  }

  const direct = (core: Core, entry: MountEntry) =>
    new DatabaseBackend({
      storage: new BarrierView(core.barrier, dataPrefix(entry)),
      leases: {
        register: () => Promise.reject(new Error('no')),
        revoke: async () => {},
        ttls: () => ({ ttl: 60, max: 60 }),
      },
      mount: () => entry,
      maxValueSize: 1 << 20,
    })

  t.test('a static role takes its user over, and static-creds gives the password of the moment', async (t) => {
    const { core } = await setup(t)
    const app = await dbUser(t)
    await write(core, 'database/static-roles/app', { db_name: 'pg', username: app.name, rotation_period: '1h' })
    t.notOk(await logsIn(app.name, app.password), 'the password it had no longer works')
    const c = await readJson<StaticCreds>(core, 'database/static-creds/app')
    t.equal(c.username, app.name)
    t.match(c.password, /^[A-Za-z0-9]{32}$/)
    t.equal(c.rotation_period, 3600)
    t.ok(c.ttl > 3590 && c.ttl <= 3600, `it next changes in an hour (${c.ttl}s)`)
    t.ok(await logsIn(app.name, c.password), 'the password static-creds gives works')
    const shown = await readJson<Record<string, unknown>>(core, 'database/static-roles/app')
    t.notOk('password' in shown, 'the role never shows the password')
    t.same(await core.list('database/static-creds'), ['app'])

    await write(core, 'database/rotate-role/app')
    const after = await readJson<StaticCreds>(core, 'database/static-creds/app')
    t.not(after.password, c.password, 'rotate-role changes it now')
    t.notOk(await logsIn(app.name, c.password), 'the old one is refused')
    t.ok(await logsIn(app.name, after.password), 'the new one works')

    await t.rejects(write(core, 'database/static-roles/app', { username: 'other' }), kind('invalid', /cannot change/))
    await write(core, 'database/static-roles/app', { rotation_period: '2h' })
    t.equal(
      (await readJson<StaticCreds>(core, 'database/static-creds/app')).password,
      after.password,
      'an update keeps it',
    )
    await core.delete('database/static-roles/app')
    await t.rejects(core.read('database/static-creds/app'), kind('not-found'))
    t.ok(await logsIn(app.name, after.password), 'deleting the role leaves the user as it was')
  })

  t.test('the password changes every rotation_period, and the old one stops working', async (t) => {
    const { core } = await setup(t)
    const app = await dbUser(t)
    await write(core, 'database/static-roles/app', { db_name: 'pg', username: app.name, rotation_period: '5s' })
    const first = await readJson<StaticCreds>(core, 'database/static-creds/app')
    let now = first
    for (let i = 0; i < 150 && now.password === first.password; i++) {
      await sleep(100)
      now = await readJson<StaticCreds>(core, 'database/static-creds/app')
    }
    t.not(now.password, first.password, 'it rotated by itself')
    t.notOk(await logsIn(app.name, first.password), 'the old password is refused')
    t.ok(await logsIn(app.name, now.password))
  })

  t.test('static roles refuse what could break a statement, and report what PostgreSQL says', async (t) => {
    const { core } = await setup(t)
    await t.rejects(
      write(core, 'database/static-roles/bad', {
        db_name: 'pg',
        username: `app"; DROP ROLE postgres; --`,
        rotation_period: '1h',
      }),
      kind('invalid', /username/),
    )
    await t.rejects(
      write(core, 'database/static-roles/bad', { db_name: 'pg', username: 'nobody_here', rotation_period: '1h' }),
      kind('upstream', /role "nobody_here" does not exist/),
    )
    await t.rejects(
      core.read('database/static-roles/bad'),
      kind('not-found'),
      'a role that could not rotate is not stored',
    )
    await t.rejects(
      write(core, 'database/static-roles/bad', { db_name: 'pg', username: 'x', rotation_period: '2s' }),
      kind('invalid', /rotation_period/),
    )
    await t.rejects(
      write(core, 'database/static-roles/bad', {
        db_name: 'pg',
        username: 'x',
        rotation_period: '1h',
        rotation_statements: `ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}'`,
      }),
      kind('invalid', /placeholder/),
    )
  })

  t.test('rotate-root: only secretfs knows the new password, and it still mints', async (t) => {
    const root = await dbUser(t, { superuser: true })
    const { core } = await setup(t, root)
    await write(core, 'database/roles/ro', {
      db_name: 'pg',
      creation_statements: `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'`,
    })
    t.same(await readJson(core, 'database/rotate-root/pg'), { last_rotation: null })
    await write(core, 'database/rotate-root/pg')
    t.notOk(await logsIn(root.name, root.password), 'the old root password is refused')
    const c = await readJson<{ username: string; password: string }>(core, 'database/creds/ro')
    t.ok(await logsIn(c.username, c.password), 'secretfs still mints with the new one')
    t.match(await readJson(core, 'database/rotate-root/pg'), { last_rotation: /^\d{4}-/ })
    t.notMatch(JSON.stringify(await readJson(core, 'database/config/pg')), /password"/, 'the config shows no password')
    await write(core, 'database/rotate-root/pg')
    t.ok(await readJson(core, 'database/creds/ro'), 'and again after a second rotation')
  })

  t.test('rotate-root needs a password it can change', async (t) => {
    const { core } = await setup(t)
    await write(core, 'database/config/nopw', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://${pg.superuser}@${pg.host}:${pg.port}/postgres`,
      verify_connection: false,
    })
    await t.rejects(write(core, 'database/rotate-root/nopw'), kind('invalid', /rotate-root needs/))
    await t.rejects(write(core, 'database/rotate-root/none'), kind('not-found'))
  })

  t.test('recovery finishes rotations a crash interrupted', async (t) => {
    const root = await dbUser(t, { superuser: true })
    const { core, entry, storage } = await setup(t, root)
    // A rotation of a static role that may or may not have reached the database.
    const app = await dbUser(t)
    await write(core, 'database/static-roles/app', { db_name: 'pg', username: app.name, rotation_period: '1h' })
    const before = await readJson<StaticCreds>(core, 'database/static-creds/app')
    await putWal(storage, { kind: 'static', role: 'app' })
    // The database got a new root password, but the daemon died before storing it.
    await pg.query(`ALTER ROLE ${root.name} PASSWORD 'SetBeforeTheCrash1'`)
    await putWal(storage, { kind: 'root', db_name: 'pg', password: 'SetBeforeTheCrash1' })
    // A root rotation whose password never reached the database.
    await putWal(storage, { kind: 'root', db_name: 'pg', password: 'NeverSet' })
    const backend = direct(core, entry)
    t.teardown(() => backend.close())
    await backend.recover()
    t.same(await listWal(storage), [], 'every record is done with')
    await write(core, 'database/roles/ro', {
      db_name: 'pg',
      creation_statements: `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'`,
    })
    t.ok(await readJson(core, 'database/creds/ro'), 'the configuration has the root password that works')
    const after = await readJson<StaticCreds>(core, 'database/static-creds/app')
    t.not(after.password, before.password, 'the static role was rotated again')
    t.ok(await logsIn(app.name, after.password), 'to a password that is stored and works')
  })

  t.test('changes made elsewhere, not known one by one, end only the pools whose configuration changed', async (t) => {
    const { core, storage } = await setup(t)
    const state = new DatabaseState(storage, DEFAULT_PG_TIMEOUTS)
    t.teardown(() => state.dropPools())
    const probe = (db: Awaited<ReturnType<DatabaseState['database']>>) =>
      db.run('probing', [], async (c) => (await c.query('SELECT 1 AS one')).rows[0].one as number)
    // Held between its statements, as a rotation holds it.
    const held = await state.database('pg')
    await state.refreshPools()
    t.equal(await probe(held), 1, 'the configuration is as it was: the pool held still works')
    t.equal(await state.database('pg'), held, 'and is still the one given')
    await configure(core)
    await state.refreshPools()
    await t.rejects(probe(held), /the connection pool was closed/, 'the configuration changed: its pool is ended')
    t.equal(await probe(await state.database('pg')), 1, 'and the next is made from the new one')
  })
}
