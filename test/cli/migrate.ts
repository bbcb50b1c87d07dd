// `secretfs migrate`: a SQLite store copied to PostgreSQL and back into a fresh data directory,
// each copy unsealed with the same passphrase and serving the same secrets and mounts; a target
// that is not empty, a source in use, and a missing storage file refused with nothing written.
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { runCli } from '../helpers/cli-run.js'
import { sh, startDaemon, tempDir } from '../helpers/daemon.js'
import { havePostgres, startPostgres } from '../helpers/postgres.js'

if (!havePostgres(t)) process.exit(0)
t.setTimeout(300_000)

const pg = await startPostgres(t)
const digest = async (file: string) =>
  createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex')

t.test('SQLite to PostgreSQL to a fresh SQLite directory: the same secrets and mounts', async (t) => {
  const dir = await tempDir(t)
  const pass = path.join(dir, 'pass')
  await fs.writeFile(pass, 'the one passphrase\n', { mode: 0o600 })
  const first = path.join(dir, 'first')
  const url = await pg.createDatabase()
  const pgEnv = { SECRETFS_STORAGE: url }
  const noPg = { SECRETFS_STORAGE: '' }

  // A store with a mount of its own and secrets in it.
  const a = await startDaemon(t, {
    args: ['--data', first, '--passphrase-file', pass],
    mountpoint: path.join(dir, 'mnt'),
    env: noPg,
  })
  const cliA = (args: string[]) => runCli(args, { env: { ...noPg, SECRETFS_ADDR: a.socketPath } })
  t.equal((await cliA(['mount', 'generic', '--path', 'team', '--description', 'the team'])).code, 0)
  t.equal((await cliA(['write', 'team/db', 'user=app', 'password=s3cret'])).code, 0)
  t.equal((await sh('mkdir -p secret/dir && echo hello > secret/dir/greeting', { cwd: a.mountpoint })).code, 0)

  const inUse = await runCli(['migrate', '--to', 'postgres', '--data', first], { env: pgEnv })
  t.equal(inUse.code, 1, 'a SQLite store a daemon holds is not copied')
  t.match(inUse.stderr, /is in use by a running secretfs daemon; stop it, then migrate/)
  t.same(await a.stop(), { code: 0, signal: null })

  const up = await runCli(['migrate', '--to', 'postgres', '--data', first], { env: pgEnv })
  t.equal(up.code, 0, up.stderr)
  t.match(up.stdout, new RegExp(`Success! Copied \\d+ entries from the store in ${first} to the PostgreSQL store`))
  t.notMatch(up.stdout + up.stderr, pg.superPassword)

  // The copy on PostgreSQL unseals with the same passphrase and shows the same.
  const b = await startDaemon(t, { args: ['--passphrase-file', pass], mountpoint: path.join(dir, 'mnt'), env: pgEnv })
  const cliB = (args: string[]) => runCli(args, { env: { ...pgEnv, SECRETFS_ADDR: b.socketPath } })
  t.equal((await cliB(['read', '--field', 'password', 'team/db'])).stdout, 's3cret')
  t.equal((await sh('cat secret/dir/greeting', { cwd: b.mountpoint })).stdout, 'hello\n')
  t.match((await cliB(['mounts'])).stdout, /team\/\s+generic\s+the team/)

  // Into PostgreSQL again: the database is not empty, and nothing is written.
  const count = () => pg.query('SELECT count(*) FROM secretfs_entries', { database: new URL(url).pathname.slice(1) })
  const before = await count()
  const again = await runCli(['migrate', '--to', 'postgres', '--data', first], { env: pgEnv })
  t.equal(again.code, 1)
  t.match(again.stderr, /the PostgreSQL store is not empty; migrate copies only into an empty store, and wrote nothing/)
  t.equal(await count(), before, 'the target is untouched')
  t.same(await b.stop(), { code: 0, signal: null })

  // Back into the first directory: refused, its file unchanged.
  const firstFile = path.join(first, 'secretfs.db')
  const kept = await digest(firstFile)
  const over = await runCli(['migrate', '--from', 'postgres', '--data', first], { env: pgEnv })
  t.equal(over.code, 1)
  t.match(over.stderr, `the store in ${first} is not empty`)
  t.equal(await digest(firstFile), kept, 'the SQLite target is untouched')

  // Into a fresh directory: the same again, on SQLite.
  const second = path.join(dir, 'second')
  const down = await runCli(['migrate', '--from', 'postgres', '--data', second], { env: pgEnv })
  t.equal(down.code, 0, down.stderr)
  t.match(down.stdout, new RegExp(`Copied \\d+ entries from the PostgreSQL store to the store in ${second}`))
  t.equal((await fs.stat(path.join(second, 'secretfs.db'))).mode & 0o777, 0o600)
  const c = await startDaemon(t, {
    args: ['--data', second, '--passphrase-file', pass],
    mountpoint: path.join(dir, 'mnt'),
    env: noPg,
  })
  const cliC = (args: string[]) => runCli(args, { env: { ...noPg, SECRETFS_ADDR: c.socketPath } })
  t.equal((await cliC(['read', '--field', 'user', 'team/db'])).stdout, 'app')
  t.equal((await sh('cat secret/dir/greeting', { cwd: c.mountpoint })).stdout, 'hello\n')
  t.match((await cliC(['mounts'])).stdout, /team\/\s+generic\s+the team/)
  t.notMatch(c.stderr(), /initialised/, 'the copy was unsealed, not created anew')
})

t.test('migrate without a storage URL, from a missing or open storage file, or with a URL argument', async (t) => {
  const dir = await tempDir(t)
  const data = path.join(dir, 'data')
  const none = await runCli(['migrate', '--to', 'postgres', '--data', data], { env: { SECRETFS_STORAGE: '' } })
  t.equal(none.code, 2)
  t.match(none.stderr, /migrate needs the PostgreSQL store's URL/)
  const missing = path.join(dir, 'nope')
  const gone = await runCli(['migrate', '--to', 'postgres', '--data', data, '--storage-file', missing])
  t.equal(gone.code, 1)
  t.match(gone.stderr, `cannot read the storage file ${missing} (ENOENT)`)
  const open = path.join(dir, 'open')
  await fs.writeFile(open, pg.url, { mode: 0o644 })
  const exposed = await runCli(['migrate', '--from', 'postgres', '--data', data, '--storage-file', open])
  t.equal(exposed.code, 1)
  t.match(exposed.stderr, `the storage file ${open} is open to other users (mode 644)`)
  const arg = await runCli(['migrate', '--to', 'postgres', '--storage-file', pg.url])
  t.equal(arg.code, 2)
  t.match(arg.stderr, /a PostgreSQL URL is never taken on the command line/)
  t.notMatch(arg.stderr, pg.superPassword)
  const nothing = await runCli(['migrate', '--to', 'postgres', '--data', data], {
    env: { SECRETFS_STORAGE: await pg.createDatabase() },
  })
  t.equal(nothing.code, 1)
  t.match(nothing.stderr, `there is no store to copy: the store in ${data} is empty`)
  await t.rejects(fs.stat(data), { code: 'ENOENT' }, 'nothing created')
  t.equal((await runCli(['migrate'])).code, 2, 'a direction is needed')
})
