// Database credentials through the real CLI against a real daemon and a real PostgreSQL 15: the
// walkthrough (mount, write config with the password from stdin, read, revoke, rotate-root),
// `exec` that hands psql PGUSER and PGPASSWORD for a user that exists only while it runs, and
// `eval "$(secretfs read ... --format env)"` that lets psql log in from the shell.
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { runCli } from '../helpers/cli-run.js'
import { cliCommand, sh, startDaemon, tempDir } from '../helpers/daemon.js'
import { havePostgres, startPostgres } from '../helpers/postgres.js'

if (havePostgres(t)) {
  const pg = await startPostgres(t)
  // secretfs's own superuser: rotate-root changes its password, never the helper's.
  const ADMIN_PASSWORD = randomBytes(18).toString('hex')
  await pg.query(`
    CREATE ROLE admin SUPERUSER LOGIN PASSWORD '${ADMIN_PASSWORD}';
    CREATE SCHEMA app;
    CREATE TABLE app.visible (v text); INSERT INTO app.visible VALUES ('hello');
    GRANT USAGE ON SCHEMA app TO PUBLIC;
  `)
  const daemon = await startDaemon(t)
  const cli = (args: string[], input?: string) =>
    runCli(args, { env: { SECRETFS_ADDR: daemon.socketPath }, ...(input !== undefined && { input }) })

  const CONNECTION_URL = `postgresql://{{username}}:{{password}}@${pg.host}:${pg.port}/postgres?sslmode=disable`
  const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON app.visible TO "{{name}}";`
  const configArgs = [
    'plugin_name=postgresql-database-plugin',
    `connection_url=${CONNECTION_URL}`,
    'username=admin',
    'password=-',
    'allowed_roles=readonly',
  ]

  const madeRoles = () => pg.madeUsers()

  async function succeed(t: Test, args: string[], input?: string): Promise<string> {
    const r = await cli(args, input)
    t.same([r.code, r.stderr], [0, ''], args.slice(0, 2).join(' '))
    return r.stdout
  }

  /** The database mount with config/pg and roles/readonly; teardown unmounts it, dropping its users. */
  async function mountDatabase(t: Test) {
    t.teardown(() => cli(['unmount', 'database']))
    await succeed(t, ['mount', 'database'])
    await succeed(t, ['write', 'database/config/pg', ...configArgs], ADMIN_PASSWORD)
    await succeed(t, ['write', 'database/roles/readonly', 'db_name=pg', `creation_statements=${CREATE}`])
  }

  // psql with nothing of its own: no ~/.pgpass, no service file, only what secretfs gives it.
  const home = await tempDir(t, 'sfs-db-home-')
  const c = cliCommand()
  const shellEnv: NodeJS.ProcessEnv = {
    HOME: home,
    PGPASSFILE: '/dev/null',
    PGSERVICEFILE: '/dev/null',
    PGCONNECT_TIMEOUT: '5',
    SECRETFS_ADDR: daemon.socketPath,
    ...c.env,
  }
  // The shell's `secretfs`: the CLI as the tests run it.
  const secretfs = [c.file, ...c.args].map((a) => `'${a}'`).join(' ')
  const run = (script: string, env: NodeJS.ProcessEnv = {}) =>
    sh(`secretfs() { ${secretfs} "$@"; }\n${script}`, { env: { ...shellEnv, ...env } })
  const psql = `psql -X -h ${pg.host} -p ${pg.port} -d postgres`

  t.test('the walkthrough: mount, write config, read, revoke, rotate-root', async (t) => {
    // Teardown gives admin its password back, for the tests after this one.
    t.teardown(() => pg.query(`ALTER ROLE admin PASSWORD '${ADMIN_PASSWORD}'`))
    t.teardown(() => cli(['unmount', 'database']))
    t.equal(await succeed(t, ['mount', 'database']), "Successfully mounted 'database' at 'database'!\n")
    t.equal(
      await succeed(t, ['write', 'database/config/pg', ...configArgs], ADMIN_PASSWORD),
      'Success! Data written to: database/config/pg\n',
      'the password from stdin',
    )
    const shown = await succeed(t, ['read', 'database/config/pg'])
    t.match(shown, /^connection_details +.*"username":"admin"/m)
    t.notMatch(shown, ADMIN_PASSWORD, 'read never shows the password')
    t.equal(
      await succeed(t, ['write', 'database/roles/readonly', 'db_name=pg', `creation_statements=${CREATE}`]),
      'Success! Data written to: database/roles/readonly\n',
    )

    const read = await succeed(t, ['read', 'database/creds/readonly'])
    const rows = read.trimEnd().split('\n')
    t.same(
      rows.map((r) => r.split(/ +/)[0]),
      ['Key', '---', 'lease_id', 'lease_duration', 'lease_renewable', 'password', 'username'],
      "Vault's table",
    )
    const value = (k: string) => rows.find((r) => r.startsWith(k + ' '))!.replace(/^\S+ +/, '')
    const leaseId = value('lease_id')
    t.match(leaseId, /^database\/creds\/readonly\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    t.same([value('lease_duration'), value('lease_renewable')], ['768h0m0s', 'true'])
    const user = { username: value('username'), password: value('password') }
    t.match(user, { username: /^v-secretfs-readonly-/, password: /^[A-Za-z0-9]{32}$/ })
    t.same(await madeRoles(), [user.username])
    const login = () => pg.psql('SELECT v FROM app.visible', { user: user.username, password: user.password })
    t.equal((await login()).stdout.trim(), 'hello', 'psql logs in as it')

    const revoke = await succeed(t, ['revoke', leaseId])
    t.equal(revoke, `Success! Revoked the secret with ID '${leaseId}', if it existed.\n`)
    t.same(await madeRoles(), [], 'revoke dropped the role')
    t.match((await login()).stderr, /password authentication failed/)

    const usage = await cli(['write', 'database/rotate-root/pg'])
    t.equal(usage.code, 2, 'without -f: a usage error')
    t.match(usage.stderr, /nothing to write/)
    t.match(usage.stderr, /-f to write no fields/)
    t.equal((await pg.psql('SELECT 1', { user: 'admin', password: ADMIN_PASSWORD })).status, 0, 'nothing rotated')

    t.equal(
      await succeed(t, ['write', '-f', 'database/rotate-root/pg']),
      'Success! Data written to: database/rotate-root/pg\n',
    )
    const old = await pg.psql('SELECT 1', { user: 'admin', password: ADMIN_PASSWORD })
    t.match(old.stderr, /password authentication failed for user "admin"/, 'the old superuser password is refused')
    t.match(await succeed(t, ['read', 'database/rotate-root/pg']), /^last_rotation +\S+Z$/m)
    t.match(await succeed(t, ['read', 'database/creds/readonly']), /^username +v-secretfs-readonly-/m, 'it still mints')
    t.notMatch(daemon.stderr() + daemon.stdout(), user.password, 'no password in the log')
  })

  t.test('exec: psql runs as the new user, which is gone when it returns', async (t) => {
    await mountDatabase(t)
    // Stale variables that exec's must win over.
    const r = await run(
      `secretfs exec database/creds/readonly -- ${psql} -Atc 'select current_user' ` +
        `-c "select rolname from pg_roles where rolname like 'v-secretfs-%'" -c 'select v from app.visible'`,
      { PGUSER: 'postgres', PGPASSWORD: 'stale' },
    )
    t.equal(r.code, 0, r.stderr)
    const [current, listed, visible, ...rest] = r.stdout.split('\n')
    t.match(current, /^v-secretfs-readonly-[A-Za-z0-9]{20}-\d{10}$/, 'select current_user: the minted user')
    t.equal(listed, current, 'its role existed while psql ran')
    t.same([visible, rest], ['hello', ['']])
    t.same(await madeRoles(), [], 'and is dropped once exec returns')

    const kept = await run(`secretfs exec --keep-lease database/creds/readonly -- ${psql} -Atc 'select current_user'`)
    t.equal(kept.code, 0, kept.stderr)
    t.same(await madeRoles(), [kept.stdout.trim()], '--keep-lease leaves it')
    await succeed(t, ['revoke', '--prefix', 'database/creds/readonly'])
    t.same(await madeRoles(), [])
  })

  t.test('read --format env: export lines that eval turns into a psql login', async (t) => {
    await mountDatabase(t)
    const r = await cli(['read', 'database/creds/readonly', '--format', 'env'])
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /^export PGUSER=v-secretfs-readonly-[A-Za-z0-9]{20}-\d{10}\nexport PGPASSWORD=[A-Za-z0-9]{32}\n$/)
    const user = /^export PGUSER=(\S+)$/m.exec(r.stdout)![1]!

    const shell = await run(
      `eval "$(secretfs read database/creds/readonly --format env)"\n` +
        `printf '%s\\n' "$PGUSER"\n${psql} -Atc 'select current_user'`,
      { PGUSER: 'postgres', PGPASSWORD: 'stale' },
    )
    t.equal(shell.code, 0, shell.stderr)
    const [exported, current] = shell.stdout.split('\n')
    t.match(exported, /^v-secretfs-readonly-/)
    t.equal(current, exported, 'psql logged in as the user eval exported')
    t.same(await madeRoles(), [user, exported].sort(), 'both leases run on')
    await succeed(t, ['revoke', '--prefix', 'database/creds/readonly'])
    t.same(await madeRoles(), [])
  })
}
