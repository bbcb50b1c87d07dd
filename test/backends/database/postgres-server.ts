// The PostgreSQL test helper itself: a real server of the test's own, where a role's password is
// really checked, that stops and starts again (as the outage tests need), and that is gone, process
// and data directory, once its test ends.
import fs from 'node:fs/promises'
import t from 'tap'
import { canConnect } from '../../helpers/moto.js'
import { havePostgres, startPostgres } from '../../helpers/postgres.js'

if (!havePostgres(t)) process.exit(0)
t.setTimeout(300_000)

/** The postmaster listening on `port`, found by its command line: its pid and data directory. */
async function postmasterOf(port: number): Promise<{ pid: number; dataDir: string } | undefined> {
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const argv = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').then(
      (s) => s.split('\0'),
      (): string[] => [],
    )
    const p = argv.indexOf('-p')
    const d = argv.indexOf('-D')
    if (argv[0]?.endsWith('/postgres') && p > 0 && argv[p + 1] === String(port) && d > 0) {
      return { pid: Number(entry), dataDir: argv[d + 1]! }
    }
  }
  return undefined
}

let seen: { port: number; pid: number; dataDir: string } | undefined

await t.test('a server of its own, with passwords checked, that stops and starts again', async (t) => {
  const pg = await startPostgres(t)
  t.equal(pg.host, '127.0.0.1')
  t.equal(pg.superuser, 'postgres')
  t.match(pg.superPassword, /^[A-Za-z0-9]{16,}$/, 'the superuser password is random letters and digits')
  t.equal(pg.url, `postgresql://postgres:${pg.superPassword}@127.0.0.1:${pg.port}/postgres`)
  t.match(await pg.query('select version()'), /^PostgreSQL 15\./, 'PostgreSQL 15 answers the superuser')
  t.equal(await pg.query("select current_setting('listen_addresses')"), '127.0.0.1')

  const wrongSuper = await pg.psql('select 1', { password: pg.superPassword + 'x' })
  t.not(wrongSuper.status, 0, 'a wrong superuser password is refused')
  t.match(wrongSuper.stderr, /password authentication failed for user "postgres"/)

  await pg.query("create role app login password 'right-pass'; create database appdb owner app")
  t.equal(
    await pg.query('select current_user, current_database()', {
      user: 'app',
      password: 'right-pass',
      database: 'appdb',
    }),
    'app|appdb',
    'the role connects with its password',
  )
  const wrong = await pg.psql('select 1', { user: 'app', password: 'wrong-pass' })
  t.not(wrong.status, 0, 'and not with a wrong one')
  t.match(wrong.stderr, /password authentication failed for user "app"/)
  await pg.query("alter role app password 'new-pass'")
  const old = await pg.psql('select 1', { user: 'app', password: 'right-pass' })
  t.match(old.stderr, /password authentication failed for user "app"/, 'nor with its old one')
  t.equal(await pg.query('select 1', { user: 'app', password: 'new-pass' }), '1', 'the new one works')

  const bad = await pg.psql('select 1; select nosuchcolumn; select 2')
  t.not(bad.status, 0, 'psql fails on a failed statement')
  t.equal(bad.stdout.trim(), '1', 'and stops there')
  t.match(bad.stderr, /column "nosuchcolumn" does not exist/)
  await t.rejects(pg.query('select nosuchcolumn'), /column "nosuchcolumn" does not exist/, 'query throws')

  await pg.query('create table kept (v text)', { database: 'appdb' })
  await pg.query("insert into kept values ('before the outage')", { database: 'appdb' })
  for (const round of [1, 2]) {
    await pg.stop()
    await pg.stop() // twice is fine
    const down = await pg.psql('select 1')
    t.not(down.status, 0, `round ${round}: stopped, a query fails`)
    t.match(down.stderr, /connection to server at "127\.0\.0\.1", port \d+ failed|Connection refused/)
    t.notOk(await canConnect(pg.port), 'nothing listens on the port')
    await pg.start()
    await pg.start() // and so is starting twice
    t.equal(
      await pg.query('select v from kept', { database: 'appdb' }),
      'before the outage',
      `round ${round}: started again, on the same port and data`,
    )
  }
  t.equal(await pg.query('select 1', { user: 'app', password: 'new-pass' }), '1', 'the role survives a restart')

  const found = await postmasterOf(pg.port)
  t.ok(found, 'the postmaster is found by its port')
  const owner = (await fs.stat(found!.dataDir)).uid
  t.not(owner, 0, 'its data directory belongs to the postgres user, not root')
  seen = { port: pg.port, ...found! }
})

t.test('after teardown the server and its directory are gone', async (t) => {
  t.ok(seen, 'the first test saw the server')
  const { port, pid, dataDir } = seen!
  await t.rejects(fs.stat(`/proc/${pid}`), { code: 'ENOENT' }, 'the postmaster has exited')
  t.equal(await postmasterOf(port), undefined, 'no postgres on its port')
  t.notOk(await canConnect(port), 'nothing listens on the port')
  await t.rejects(fs.stat(dataDir), { code: 'ENOENT' }, 'the data directory is deleted')
})
