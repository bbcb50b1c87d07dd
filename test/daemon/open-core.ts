// The store a daemon opens: only in a data directory of its own user that no one else can change,
// never through a symbolic link, and nothing is created when the daemon refuses to start.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { runCli } from '../helpers/cli-run.js'
import { startDaemon, tempDir } from '../helpers/daemon.js'
import { bareEnv, checkCliRunsAs, dirOf, fileOf, runAs, runCliAs } from '../helpers/other-user.js'

// Users with no /etc/passwd entry, used by this file only.
const VICTIM = 64111
const ATTACKER = 64112

t.test("another user's open data directory is refused, and a symlink planted in it harms nothing", async (t) => {
  if (!(await checkCliRunsAs(t, VICTIM))) return
  const home = await dirOf(t, VICTIM)
  const pass = await fileOf(path.join(home, 'pass'), VICTIM, 'correct horse\n')
  const notes = await fileOf(path.join(home, 'notes'), VICTIM, "the victim's notes\n", 0o644)
  const shared = await dirOf(t, ATTACKER, 0o755)
  const data = path.join(shared, 'data')
  const attacker = (script: string) => runAs(ATTACKER, '/bin/sh', ['-c', script], bareEnv())
  t.equal((await attacker(`mkdir ${data} && chmod 777 ${data}`)).code, 0)
  const victim = (args: string[]) => runCliAs(VICTIM, args, bareEnv(home))
  const dirMessage = new RegExp(
    `the data directory ${data} belongs to another user \\(uid ${ATTACKER}\\), not to you \\(uid ${VICTIM}\\)`,
  )

  const init = await victim(['init', '--data', data, '--passphrase-file', pass])
  t.equal(init.code, 1, 'init refuses')
  t.match(init.stderr, dirMessage)
  t.same(await fs.readdir(data), [], 'init created nothing there')

  // Whatever the victim did, the attacker now points the store at the victim's file.
  t.equal((await attacker(`rm -f ${data}/secretfs.db*; ln -s ${notes} ${data}/secretfs.db`)).code, 0)
  const server = await victim([
    'server',
    '--data',
    data,
    '--passphrase-file',
    pass,
    '--address',
    path.join(home, 'run', 'secretfs.sock'),
  ])
  t.equal(server.code, 1, 'the server refuses')
  t.match(server.stderr, dirMessage)
  t.notMatch(server.stderr, /at .*\.js:\d+/, 'no stack trace')
  const st = await fs.stat(notes)
  t.equal(st.mode & 0o777, 0o644, "the victim's file keeps its mode")
  t.equal(await fs.readFile(notes, 'utf8'), "the victim's notes\n", "the victim's file keeps its content")
})

t.test('a data directory others can enter is refused, with the chmod that fixes it', async (t) => {
  const dir = await tempDir(t)
  const data = path.join(dir, 'data')
  await fs.mkdir(data, { mode: 0o750 })
  await fs.chmod(data, 0o750)
  await fs.writeFile(path.join(dir, 'key'), Buffer.alloc(32, 1), { mode: 0o600 })
  const init = await runCli(['init', '--data', data, '--key-file', path.join(dir, 'key')])
  t.equal(init.code, 1)
  t.match(init.stderr, `the data directory ${data} is open to other users (mode 750)`)
  t.match(init.stderr, `chmod 700 ${data}`)
  const d = await startDaemon(t, { args: ['--data', data, '--key-file', path.join(dir, 'key')], wait: 'exit' })
  t.equal((await d.exited).code, 1)
  t.match(d.stderr(), `the data directory ${data} is open to other users (mode 750)`)
  t.same(await fs.readdir(data), [], 'nothing was created')
})

t.test('a missing data directory is created 0700', async (t) => {
  const dir = await tempDir(t)
  const data = path.join(dir, 'new', 'data')
  await fs.writeFile(path.join(dir, 'key'), Buffer.alloc(32, 1), { mode: 0o600 })
  const d = await startDaemon(t, {
    args: ['--data', data, '--key-file', path.join(dir, 'key')],
    mountpoint: false,
  })
  await d.stop()
  t.equal((await fs.stat(data)).mode & 0o777, 0o700)
  t.ok((await fs.stat(path.join(data, 'secretfs.db'))).isFile())
})

t.test('a store file that is a symlink, or a -wal or -shm that is not a plain file, is refused', async (t) => {
  const dir = await tempDir(t)
  const key = path.join(dir, 'key')
  await fs.writeFile(key, Buffer.alloc(32, 1), { mode: 0o600 })
  const notes = path.join(dir, 'notes')
  await fs.writeFile(notes, 'keep me\n', { mode: 0o644 })
  await fs.chmod(notes, 0o644)
  const start = (data: string) =>
    startDaemon(t, { args: ['--data', data, '--key-file', key], mountpoint: false, wait: 'exit' })
  const untouched = async () => {
    t.equal((await fs.stat(notes)).mode & 0o777, 0o644, 'the target keeps its mode')
    t.equal(await fs.readFile(notes, 'utf8'), 'keep me\n', 'the target keeps its content')
  }

  const linked = path.join(dir, 'linked')
  await fs.mkdir(linked, { mode: 0o700 })
  await fs.symlink(notes, path.join(linked, 'secretfs.db'))
  const a = await start(linked)
  t.equal((await a.exited).code, 1)
  t.match(a.stderr(), `${linked}/secretfs.db is a symbolic link`)
  await untouched()

  // A real store, whose write-ahead log someone replaced with a link.
  const wal = path.join(dir, 'wal')
  t.equal((await runCli(['init', '--data', wal, '--key-file', key])).code, 0)
  await fs.symlink(notes, path.join(wal, 'secretfs.db-wal'))
  const b = await start(wal)
  t.equal((await b.exited).code, 1)
  t.match(b.stderr(), `${wal}/secretfs.db-wal is a symbolic link`)
  await untouched()

  await fs.rm(path.join(wal, 'secretfs.db-wal'))
  await fs.mkdir(path.join(wal, 'secretfs.db-shm'))
  const c = await start(wal)
  t.equal((await c.exited).code, 1)
  t.match(c.stderr(), `${wal}/secretfs.db-shm is not a regular file`)
})

t.test('--sealed on an empty data directory creates nothing, so that init still can', async (t) => {
  const dir = await tempDir(t)
  const empty = path.join(dir, 'empty')
  await fs.mkdir(empty, { mode: 0o700 })
  const missing = path.join(dir, 'missing')
  for (const data of [empty, missing]) {
    const d = await startDaemon(t, { args: ['--data', data, '--sealed'], mountpoint: false, wait: 'exit' })
    t.equal((await d.exited).code, 1)
    t.match(d.stderr(), `there is no store in ${data} yet; create one with: secretfs init --data ${data}`)
  }
  t.same(await fs.readdir(empty), [], 'nothing in the empty directory')
  await t.rejects(fs.stat(missing), { code: 'ENOENT' }, 'the missing one is not created')
  await fs.writeFile(path.join(dir, 'key'), Buffer.alloc(32, 1), { mode: 0o600 })
  const init = await runCli(['init', '--data', empty, '--key-file', path.join(dir, 'key')])
  t.equal(init.code, 0, init.stderr)
})
