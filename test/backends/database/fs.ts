// The database backend through a real daemon's mount and the shell, against a real PostgreSQL 15:
// mkdir mounts it, key=value lines and a copied JSON file configure it, cat mints a user psql can
// log in as, rm of the lease and rmdir of the mount drop users, a bad write fails at close and
// stores nothing, and static roles and rotate-root change passwords that psql then sees.
import fs from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { quiet, sh, startDaemon, tempDir } from '../../helpers/daemon.js'
import { havePostgres, startPostgres } from '../../helpers/postgres.js'

interface Creds {
  username: string
  password: string
}

if (havePostgres(t)) {
  const pg = await startPostgres(t)
  // secretfs's own superuser: rotate-root changes its password, never the helper's.
  const ADMIN_PASSWORD = randomBytes(18).toString('hex')
  await pg.query(`
    CREATE ROLE admin SUPERUSER LOGIN PASSWORD '${ADMIN_PASSWORD}';
    CREATE SCHEMA app;
    CREATE TABLE app.visible (v text); INSERT INTO app.visible VALUES ('hello');
    CREATE TABLE app.hidden (v text); INSERT INTO app.hidden VALUES ('secret');
    GRANT USAGE ON SCHEMA app TO PUBLIC;
  `)
  const daemon = await startDaemon(t)
  const work = await tempDir(t, 'sfs-db-work-')
  const root = (command: string, input?: string) =>
    sh(command, {
      cwd: daemon.mountpoint,
      env: { PW: ADMIN_PASSWORD, WORK: work },
      ...(input !== undefined && { input }),
    })
  const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON app.visible TO "{{name}}";`
  await fs.writeFile(
    path.join(work, 'role.json'),
    JSON.stringify({ db_name: 'pg', creation_statements: CREATE, default_ttl: '1h', max_ttl: '24h' }, null, 2) + '\n',
  )
  await fs.writeFile(
    path.join(work, 'odd-role.json'),
    JSON.stringify({ db_name: 'pg', creation_statements: `CREATE ROLE "{{name}}" PASSWORD '{{secret}}'` }) + '\n',
  )
  const CONNECTION_URL = `postgresql://{{username}}:{{password}}@${pg.host}:${pg.port}/postgres?sslmode=disable`

  const madeRoles = () => pg.madeUsers()
  const asUser = (c: Creds, sql: string) => pg.psql(sql, { user: c.username, password: c.password })
  const mounted = async () => /^database\/ +database/m.test((await root('cat sys/mounts')).stdout)

  /**
   * mkdir database, config/pg as key=value lines from printf, roles/readonly copied from a JSON
   * file. Teardown unmounts it, which drops every user it made.
   */
  async function mountDatabase(t: Test, allowed = 'readonly') {
    t.teardown(async () => {
      if (await mounted()) await root('rmdir database')
    })
    t.equal((await root('mkdir database')).code, 0, 'mkdir mounts it')
    t.ok(await mounted(), 'sys/mounts has it')
    const config = await root(
      `printf '%s\\n' plugin_name=postgresql-database-plugin 'connection_url=${CONNECTION_URL}' ` +
        `username=admin "password=$PW" allowed_roles=${allowed} > database/config/pg`,
    )
    t.same([config.code, config.stderr], [0, ''])
    // The shell ignores the status of the close of a redirection: that it was stored shows in ls.
    t.equal((await root('ls database/config/')).stdout, 'pg\n', 'config/pg written')
    t.same(await root('cp "$WORK/role.json" database/roles/readonly'), quiet)
  }

  async function mint(t: Test): Promise<Creds & Record<string, unknown>> {
    const r = await root('cat database/creds/readonly')
    t.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout) as Creds & Record<string, unknown>
  }

  t.test('mkdir, config, role, cat creds, psql, rm of the lease', async (t) => {
    await mountDatabase(t)
    const shown = await root('cat database/config/pg')
    t.equal(shown.code, 0, shown.stderr)
    t.notMatch(shown.stdout, ADMIN_PASSWORD, 'cat config/pg never shows the password')
    t.notMatch(shown.stdout, /"password"/)
    t.match(JSON.parse(shown.stdout), {
      plugin_name: 'postgresql-database-plugin',
      connection_details: { connection_url: CONNECTION_URL, username: 'admin' },
      allowed_roles: ['readonly'],
    })
    t.match(JSON.parse((await root('cat database/roles/readonly')).stdout), {
      db_name: 'pg',
      creation_statements: [CREATE],
      default_ttl: 3600,
      max_ttl: 86400,
    })
    t.equal((await root('ls database/roles/')).stdout, 'readonly\n')
    t.equal((await root('ls database/creds/')).stdout, 'readonly\n')
    t.same(await madeRoles(), [], 'ls mints no user')

    const c = await mint(t)
    t.match(c, {
      username: /^v-secretfs-readonly-[A-Za-z0-9]{20}-\d{10}$/,
      password: /^[A-Za-z0-9]{32}$/,
      lease_id: /^database\/creds\/readonly\/[0-9a-f-]{36}$/,
      lease_duration: 3600,
      lease_renewable: true,
      expiration: /Z$/,
    })
    t.same(await madeRoles(), [c.username], 'one cat, one user')
    t.equal((await asUser(c, 'SELECT v FROM app.visible')).stdout.trim(), 'hello', 'psql as it reads the granted table')
    const hidden = await asUser(c, 'SELECT v FROM app.hidden')
    t.not(hidden.status, 0)
    t.match(hidden.stderr, /permission denied for table hidden/, 'and not the other')
    t.notMatch(daemon.stderr() + daemon.stdout(), c.password, 'the password is in no log line')

    const id = (c.lease_id as string).split('/').pop()!
    t.equal((await root('ls database/creds/')).stdout, 'readonly\n')
    t.equal((await root('ls sys/leases/database/creds/readonly/')).stdout, id + '\n')
    t.same(await root(`rm sys/leases/database/creds/readonly/${id}`), quiet)
    const after = await asUser(c, 'SELECT 1')
    t.not(after.status, 0)
    t.match(after.stderr, /password authentication failed for user "v-secretfs-readonly-/, 'psql login fails')
    t.same(await madeRoles(), [], 'the role is gone')
    t.equal((await root('ls sys/leases/database/creds/readonly/')).stdout, '')
  })

  t.test('a bad write fails at close, says why in the log, and stores nothing', async (t) => {
    await mountDatabase(t)
    const logged = () =>
      daemon
        .stderr()
        .split('\n')
        .filter((l) => /a write was refused/.test(l))
    const before = logged().length

    const odd = await root('cp "$WORK/odd-role.json" database/roles/odd')
    t.not(odd.code, 0, 'cp fails')
    t.match(odd.stderr, /database\/roles\/odd.*Invalid argument/)
    t.equal((await root('ls database/roles/')).stdout, 'readonly\n', 'no role stored')
    t.match(logged()[before] ?? '', /creation_statements may use \{\{name\}\}.*another placeholder/)

    const replaced = await root('cat "$WORK/odd-role.json" > database/roles/readonly && echo closed')
    t.not(replaced.code, 0, 'cat fails at close')
    t.equal(replaced.stdout, '')
    t.match(replaced.stderr, /Invalid argument/)
    t.match(
      JSON.parse((await root('cat database/roles/readonly')).stdout),
      { creation_statements: [CREATE] },
      'unchanged',
    )

    const WRONG = randomBytes(12).toString('hex')
    const lines = (password: string) =>
      [
        'plugin_name=postgresql-database-plugin',
        `connection_url=${CONNECTION_URL}`,
        'username=admin',
        `password=${password}`,
        'allowed_roles=readonly',
      ].join('\n') + '\n'
    for (const name of ['other', 'pg']) {
      const bad = await root(`cat > database/config/${name}`, lines(WRONG))
      t.not(bad.code, 0, `config/${name} with a wrong password: cat fails`)
      t.match(bad.stderr, /Invalid argument/)
    }
    t.equal((await root('ls database/config/')).stdout, 'pg\n', 'no config/other')
    const reasons = logged().slice(before + 2)
    t.equal(reasons.length, 2)
    for (const line of reasons)
      t.match(line, /cannot connect with this configuration \(verify_connection\): .*password authentication failed/)
    t.notMatch(daemon.stderr(), WRONG, 'the wrong password is in no log line')
    t.notMatch(daemon.stderr(), ADMIN_PASSWORD)
    const c = await mint(t)
    t.equal((await asUser(c, 'SELECT 1')).status, 0, 'config/pg kept its working password')
  })

  t.test('cats at once each make a user; rmdir of the mount drops every one', async (t) => {
    await mountDatabase(t)
    // Each creation grants on app.visible: PostgreSQL refuses two such changes of one table at once.
    const cats = await root(
      'for i in 1 2 3 4; do cat database/creds/readonly > /dev/null & pids="$pids $!"; done\n' +
        'status=0; for p in $pids; do wait $p || status=1; done; exit $status',
    )
    t.same([cats.code, cats.stderr], [0, ''], 'four cats at once')
    t.equal((await madeRoles()).length, 4, 'four users')
    const users = [...(await madeRoles()), ...[await mint(t), await mint(t)].map((c) => c.username)].sort()
    t.same(await madeRoles(), users)
    t.same(await root('rmdir database'), quiet)
    t.notOk(await mounted())
    t.same(await madeRoles(), [], 'pg_roles has no v-secretfs- role left')
  })

  t.test('static roles: the password secretfs sets works, and rotate-role changes it', async (t) => {
    const INITIAL = randomBytes(12).toString('hex')
    await pg.query(`CREATE ROLE app LOGIN PASSWORD '${INITIAL}'`)
    t.teardown(() => pg.query('DROP ROLE IF EXISTS app'))
    await mountDatabase(t, 'readonly,app')
    const app = (password: string) => asUser({ username: 'app', password }, 'SELECT current_user')
    t.equal((await app(INITIAL)).stdout.trim(), 'app', 'app logs in with its own password')

    const write = await root(`printf 'db_name=pg\\nusername=app\\nrotation_period=1h\\n' > database/static-roles/app`)
    t.same([write.code, write.stderr], [0, ''])
    t.equal((await root('ls database/static-roles/ database/static-creds/ database/rotate-role/')).code, 0)
    t.equal((await root('ls database/static-creds/')).stdout, 'app\n')
    t.match(JSON.parse((await root('cat database/static-roles/app')).stdout), {
      db_name: 'pg',
      username: 'app',
      rotation_period: 3600,
    })
    t.match((await app(INITIAL)).stderr, /password authentication failed for user "app"/, 'the write took it over')

    const creds = async () => {
      const r = await root('cat database/static-creds/app')
      t.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout) as Creds & Record<string, unknown>
    }
    const first = await creds()
    t.match(first, { username: 'app', password: /^[A-Za-z0-9]{32}$/, rotation_period: 3600 })
    t.ok((first.ttl as number) > 3500 && (first.ttl as number) <= 3600, `ttl ${String(first.ttl)}`)
    t.equal((await app(first.password)).stdout.trim(), 'app', 'psql as app with the password of static-creds')

    t.same(await root('echo > database/rotate-role/app'), quiet)
    const second = await creds()
    t.not(second.password, first.password, 'echo > rotate-role/app rotated it')
    t.match((await app(first.password)).stderr, /password authentication failed/, 'the old password is refused')
    t.equal((await app(second.password)).stdout.trim(), 'app', 'the new one works')

    t.same(await root(': > database/rotate-role/app'), quiet)
    // A close that wrote nothing commits at the release, which the kernel sends once close has
    // returned (FileHandle.wrote): the rotation lands a moment later.
    let third = await creds()
    for (const end = Date.now() + 5000; third.password === second.password && Date.now() < end; third = await creds())
      await new Promise((r) => setTimeout(r, 50))
    t.not(third.password, second.password, ': > rotate-role/app rotated it too')
    t.match((await app(second.password)).stderr, /password authentication failed/)
    t.equal((await app(third.password)).stdout.trim(), 'app')
    t.notMatch(daemon.stderr() + daemon.stdout(), third.password, 'the password is in no log line')
  })

  t.test('rotate-root: the old password is refused, and creds still mint', async (t) => {
    await mountDatabase(t)
    // Teardown gives admin its password back, so that a later test could configure it again.
    t.teardown(() => pg.query(`ALTER ROLE admin PASSWORD '${ADMIN_PASSWORD}'`))
    const admin = (password: string) => asUser({ username: 'admin', password }, 'SELECT current_user')
    t.equal((await admin(ADMIN_PASSWORD)).stdout.trim(), 'admin')
    t.match(JSON.parse((await root('cat database/rotate-root/pg')).stdout), { last_rotation: null })

    t.same(await root('echo > database/rotate-root/pg'), quiet)
    const old = await admin(ADMIN_PASSWORD)
    t.not(old.status, 0)
    t.match(old.stderr, /password authentication failed for user "admin"/, 'the old superuser password is refused')
    t.match(JSON.parse((await root('cat database/rotate-root/pg')).stdout), { last_rotation: /Z$/ })

    const c = await mint(t)
    t.equal((await asUser(c, 'SELECT v FROM app.visible')).stdout.trim(), 'hello', 'cat creds still mints')
    t.notMatch((await root('cat database/config/pg')).stdout, /"password"/, 'config/pg shows no password still')
    t.equal((await root('rmdir database')).code, 0)
    t.same(await madeRoles(), [], 'and the new root password drops users too')
  })
}
