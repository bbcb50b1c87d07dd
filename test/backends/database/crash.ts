// The database backend across daemon restarts, with a real store and a real PostgreSQL: a daemon
// killed (kill -9) after a user was committed and before its lease was stored leaves a
// write-ahead record, and the next start drops the user; a lease that expires while the daemon
// is stopped is revoked by the next start.
import t from 'tap'
import { runCli } from '../../helpers/cli-run.js'
import { realStore, startDaemon, type DaemonProcess } from '../../helpers/daemon.js'
import { havePostgres, startPostgres } from '../../helpers/postgres.js'

if (!havePostgres(t)) process.exit(0)
// Several daemons, each waited for in turn: slow on a loaded machine.
t.setTimeout(300_000)
const pg = await startPostgres(t)
// dblink commits the role on a connection of its own, outside the creation statements'
// transaction: the user then exists while the statements still run, as after a COMMIT.
await pg.query('CREATE EXTENSION dblink')

const users = () => pg.madeUsers()
const cliOf = (d: DaemonProcess) => (args: string[]) => runCli(args, { env: { SECRETFS_ADDR: d.socketPath } })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function configure(cli: ReturnType<typeof cliOf>) {
  t.equal((await cli(['mount', 'database'])).code, 0)
  const config = await cli([
    'write',
    'database/config/pg',
    'plugin_name=postgresql-database-plugin',
    `connection_url=postgresql://{{username}}:{{password}}@${pg.host}:${pg.port}/postgres`,
    `username=${pg.superuser}`,
    `password=${pg.superPassword}`,
    'allowed_roles=*',
  ])
  t.equal(config.code, 0, config.stderr)
}

t.test('kill -9 after the user is made and before its lease is stored: the next start drops it', async (t) => {
  const { args, mountpoint } = await realStore(t, 9)
  const first = await startDaemon(t, { args, mountpoint })
  const cli = cliOf(first)
  await configure(cli)
  const dsn = `host=${pg.host} port=${pg.port} dbname=postgres user=${pg.superuser} password=${pg.superPassword}`
  const role = await cli([
    'write',
    'database/roles/slow',
    'db_name=pg',
    `creation_statements=SELECT dblink_exec('${dsn}', 'CREATE ROLE "{{name}}" LOGIN PASSWORD ''{{password}}'''); SELECT pg_sleep(60);`,
  ])
  t.equal(role.code, 0, role.stderr)
  const read = cli(['read', 'database/creds/slow'])
  for (let i = 0; i < 200 && (await users()).length === 0; i++) await sleep(50)
  t.equal((await users()).length, 1, 'the user exists, with no lease yet')
  first.child.kill('SIGKILL')
  t.not((await read).code, 0)
  t.same(await first.exited, { code: null, signal: 'SIGKILL' })
  // The statement the dead daemon left running is PostgreSQL's to end; the user stays meanwhile.
  t.equal((await users()).length, 1)

  const second = await startDaemon(t, { args, mountpoint })
  t.same(await users(), [], 'the start (its unseal) dropped the half-made user')
  const again = cliOf(second)
  t.equal((await again(['lease', 'list', 'database/'])).stderr, "No leases found under 'database/'\n")
  await again([
    'write',
    'database/roles/quick',
    'db_name=pg',
    `creation_statements=CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'`,
  ])
  t.equal((await again(['read', 'database/creds/quick'])).code, 0, 'and the backend works as before')
  t.equal((await again(['unmount', 'database'])).code, 0)
  t.same(await users(), [])
})

t.test('a lease that expires while the daemon is stopped is revoked by the next start', async (t) => {
  const { args, mountpoint } = await realStore(t, 10)
  const first = await startDaemon(t, { args, mountpoint })
  const cli = cliOf(first)
  await configure(cli)
  await cli([
    'write',
    'database/roles/brief',
    'db_name=pg',
    'default_ttl=2s',
    `creation_statements=CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
  ])
  t.equal((await cli(['read', 'database/creds/brief'])).code, 0)
  t.equal((await users()).length, 1)
  await first.stop()
  t.equal((await users()).length, 1, 'a stopped daemon revokes nothing')
  await sleep(2500)
  const second = await startDaemon(t, { args, mountpoint })
  for (let i = 0; i < 100 && (await users()).length > 0; i++) await sleep(100)
  t.same(await users(), [], 'the start revoked the expired lease: the user is dropped')
  t.equal((await cliOf(second)(['unmount', 'database'])).code, 0)
})
