// A real daemon on a PostgreSQL store: `init` and `server` with SECRETFS_STORAGE (or a
// --storage-file), secrets written and read through the mount and the CLI, a pg_dump that holds
// no name, value or passphrase, and PostgreSQL stopped and started under a running daemon.
import fs from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import { findCanaries } from '../helpers/canary-scan.js'
import { runCli } from '../helpers/cli-run.js'
import { sh, startDaemon, tempDir } from '../helpers/daemon.js'
import { havePostgres, startPostgres } from '../helpers/postgres.js'

if (!havePostgres(t)) process.exit(0)
t.setTimeout(300_000)

const pg = await startPostgres(t)
const PASSPHRASE = 'CANARYPASSPHRASE correct horse'

async function setup(t: Test) {
  const dir = await tempDir(t)
  const pass = path.join(dir, 'pass')
  await fs.writeFile(pass, PASSPHRASE + '\n', { mode: 0o600 })
  const url = await pg.createDatabase()
  return { dir, pass, url, database: new URL(url).pathname.slice(1), env: { SECRETFS_STORAGE: url } }
}

t.test('init and server on PostgreSQL: the mount and the CLI work, and pg_dump shows nothing', async (t) => {
  const { dir, pass, url, database, env } = await setup(t)
  const init = await runCli(['init', '--passphrase-file', pass], { env })
  t.equal(init.code, 0, init.stderr)
  t.match(init.stdout, /Created a store in the PostgreSQL database/)
  t.notMatch(init.stdout + init.stderr, pg.superPassword, 'the password is never printed')
  const again = await runCli(['init', '--passphrase-file', pass], { env })
  t.equal(again.code, 1)
  t.match(again.stderr, /a store already exists in the PostgreSQL database; it is never overwritten/)

  const d = await startDaemon(t, { args: ['--passphrase-file', pass], mountpoint: path.join(dir, 'mnt'), env })
  const cli = (args: string[]) => runCli(args, { env: { ...env, SECRETFS_ADDR: d.socketPath } })
  t.equal((await cli(['mount', 'generic', '--path', 'CANARYMOUNT'])).code, 0)
  const viaMount = await sh('mkdir secret/CANARYDIR && echo CANARYVALUE1 > secret/CANARYDIR/CANARYNAME1', {
    cwd: d.mountpoint,
  })
  t.equal(viaMount.code, 0, viaMount.stderr)
  t.equal((await cli(['write', 'CANARYMOUNT/CANARYNAME2', 'CANARYFIELD=CANARYVALUE2'])).code, 0)
  t.equal((await cli(['read', '--field', 'CANARYFIELD', 'CANARYMOUNT/CANARYNAME2'])).stdout, 'CANARYVALUE2')
  t.equal((await cli(['read', '--format', 'raw', 'secret/CANARYDIR/CANARYNAME1'])).stdout, 'CANARYVALUE1\n')
  t.equal(
    (await sh('cat CANARYMOUNT/CANARYNAME2', { cwd: d.mountpoint })).stdout,
    JSON.stringify({ CANARYFIELD: 'CANARYVALUE2' }) + '\n',
  )

  const dump = Buffer.from(await pg.dump(database))
  t.match(dump.toString(), /COPY public\.secretfs_entries/, 'the dump holds the store')
  const canaries = ['CANARYMOUNT', 'CANARYDIR', 'CANARYNAME', 'CANARYVALUE', 'CANARYFIELD', 'CANARYPASSPHRASE']
  t.same(findCanaries(dump, [...canaries, 'secret/', 'generic']), [], 'no name, value or passphrase in pg_dump')
  t.same(await d.stop(), { code: 0, signal: null })

  // Restarted on the same database, from a storage file this time: all is there.
  const file = path.join(dir, 'storage')
  await fs.writeFile(file, url + '\n', { mode: 0o600 })
  const e = await startDaemon(t, {
    args: ['--passphrase-file', pass, '--storage-file', file],
    mountpoint: path.join(dir, 'mnt'),
    env: { SECRETFS_STORAGE: '' },
  })
  t.equal((await sh('cat secret/CANARYDIR/CANARYNAME1', { cwd: e.mountpoint })).stdout, 'CANARYVALUE1\n')
  t.notMatch(e.stderr(), /initialised/)
})

t.test('PostgreSQL stopped under a daemon: EIO and a clear error, then it works again', async (t) => {
  const { dir, pass, env } = await setup(t)
  const d = await startDaemon(t, { args: ['--passphrase-file', pass], mountpoint: path.join(dir, 'mnt'), env })
  const cli = (args: string[]) => runCli(args, { env: { ...env, SECRETFS_ADDR: d.socketPath } })
  t.match(d.stderr(), /initialised a new store/, 'a server on an empty database creates the store')
  t.equal((await cli(['write', 'secret/before', 'v=1'])).code, 0)

  await pg.stop()
  t.teardown(() => pg.start()) // for the tests after this one, even if it fails
  const read = await cli(['read', 'secret/before'])
  t.equal(read.code, 1)
  t.match(read.stderr, /the PostgreSQL store is unreachable: connection refused/)
  t.notMatch(read.stderr, /sealed/)
  t.notMatch(read.stderr + d.stderr(), pg.superPassword, 'no password in the error or the log')
  const cat = await sh('cat secret/before', { cwd: d.mountpoint })
  t.not(cat.code, 0)
  t.match(cat.stderr, /Input\/output error/)
  const write = await sh('echo x > secret/during', { cwd: d.mountpoint })
  t.match(write.stderr, /Input\/output error/, 'a write fails too')

  await pg.start()
  t.equal((await cli(['read', '--field', 'v', 'secret/before'])).stdout, '1', 'it reads again')
  t.equal((await sh('echo y > secret/after && cat secret/after', { cwd: d.mountpoint })).stdout, 'y\n')
  t.same(await d.stop(), { code: 0, signal: null })
})

t.test('a storage file open to others, or holding no URL, is refused; a URL as an argument too', async (t) => {
  const { dir, pass, url } = await setup(t)
  const file = path.join(dir, 'storage')
  await fs.writeFile(file, url + '\n', { mode: 0o640 })
  const open = await runCli(['server', '--storage-file', file, '--passphrase-file', pass], {
    env: { SECRETFS_STORAGE: '' },
  })
  t.equal(open.code, 1)
  t.match(open.stderr, `the storage file ${file} is open to other users (mode 640)`)
  await fs.chmod(file, 0o600)
  await fs.writeFile(file, 'not-a-url with-password\n')
  const bad = await runCli(['init', '--storage-file', file, '--passphrase-file', pass], {
    env: { SECRETFS_STORAGE: '' },
  })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /does not hold a postgres:\/\/ or postgresql:\/\/ URL/)
  t.notMatch(bad.stderr, /with-password/)
  const env = await runCli(['init', '--passphrase-file', pass], { env: { SECRETFS_STORAGE: 'mysql://u:pw123@h/db' } })
  t.equal(env.code, 1)
  t.match(env.stderr, /SECRETFS_STORAGE does not hold a postgres:\/\/ or postgresql:\/\/ URL/)
  t.notMatch(env.stderr, /pw123/)
  for (const args of [
    ['server', '--storage', url],
    ['init', `--storage-file=${url}`],
  ]) {
    const r = await runCli(args)
    t.equal(r.code, 2, args[1]!.slice(0, 14))
    t.match(r.stderr, /a PostgreSQL URL is never taken on the command line/)
    t.notMatch(r.stderr, pg.superPassword)
  }
})
