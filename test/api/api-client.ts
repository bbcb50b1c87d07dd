// The client talks only to a socket of its own user, in a directory only that user can change,
// checked before a byte is sent; and it gives up, saying so, on a daemon that does not answer.
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import t, { type Test } from 'tap'
import { socketDir } from '../helpers/api-fixture.js'
import { runCli } from '../helpers/cli-run.js'
import { cliCommand } from '../helpers/daemon.js'
import { asUser, bareEnv, checkCliRunsAs, dirOf, fileOf, runCliAs, startListener } from '../helpers/other-user.js'

// Users with no /etc/passwd entry, used by this file only.
const VICTIM = 64101
const ATTACKER = 64102
const fallbackDir = `/tmp/secretfs-${VICTIM}`
const fallbackSocket = `${fallbackDir}/secretfs.sock`

const clearFallback = () => fs.rm(fallbackDir, { recursive: true, force: true })

/** The victim's home (empty, its own), a passphrase file in it, and the CLI run as the victim. */
async function victim(t: Test) {
  const home = await dirOf(t, VICTIM)
  const pass = await fileOf(path.join(home, 'pass'), VICTIM, 'correct horse\n')
  // No XDG_RUNTIME_DIR, SECRETFS_DATA or SECRETFS_ADDR: the CLI looks at the defaults, and
  // nothing is at the data directory's socket, so /tmp/secretfs-UID/ is where it ends up.
  const cli = (args: string[]) => runCliAs(VICTIM, args, bareEnv(home))
  return { home, pass, cli }
}

/** Each command that reaches a daemon refuses with `message`, and `listener` receives nothing. */
async function refusesAll(
  t: Test,
  cli: (args: string[]) => ReturnType<typeof runCliAs>,
  pass: string,
  listener: Awaited<ReturnType<typeof startListener>>,
  message: RegExp,
) {
  for (const args of [['unseal', '--passphrase-file', pass], ['write', 'secret/db', 'password=hunter2'], ['status']]) {
    const r = await cli(args)
    t.equal(r.code, 1, `secretfs ${args[0]} fails`)
    t.match(r.stderr, message, `secretfs ${args[0]} says what is wrong`)
    t.match(r.stderr, /point SECRETFS_ADDR at your daemon's socket/, `secretfs ${args[0]} says how to fix it`)
    t.notMatch(r.stderr + r.stdout, /correct horse|hunter2/)
  }
  t.equal((await listener.received()).toString('latin1'), '', 'the listener received nothing')
}

t.test('another user cannot stand in for the daemon at /tmp/secretfs-UID', async (t) => {
  if (!(await checkCliRunsAs(t, VICTIM))) return
  await clearFallback()
  t.teardown(clearFallback)

  t.test("the attacker's directory, 0777, with the attacker's socket", async (t) => {
    const { pass, cli } = await victim(t)
    const listener = await startListener(t, ATTACKER, fallbackSocket, 0o777)
    t.teardown(clearFallback)
    await refusesAll(
      t,
      cli,
      pass,
      listener,
      new RegExp(
        `will not send anything to ${fallbackSocket}: its directory ${fallbackDir} belongs to another user \\(uid ${ATTACKER}\\)`,
      ),
    )
  })

  t.test("the victim's directory left 0777, with the attacker's socket", async (t) => {
    const { pass, cli } = await victim(t)
    await fs.mkdir(fallbackDir)
    t.teardown(clearFallback)
    await fs.chown(fallbackDir, VICTIM, VICTIM)
    await fs.chmod(fallbackDir, 0o777)
    const listener = await startListener(t, ATTACKER, fallbackSocket)
    await refusesAll(t, cli, pass, listener, /its directory \/tmp\/secretfs-64101 is open to other users \(mode 777\)/)
  })

  t.test("the victim's directory, 0700, holding the attacker's socket", async (t) => {
    const { pass, cli } = await victim(t)
    await fs.mkdir(fallbackDir)
    t.teardown(clearFallback)
    await fs.chown(fallbackDir, VICTIM, VICTIM)
    await fs.chmod(fallbackDir, 0o777)
    const listener = await startListener(t, ATTACKER, fallbackSocket)
    await fs.chmod(fallbackDir, 0o700)
    await refusesAll(t, cli, pass, listener, /it belongs to another user \(uid 64102\), not to you \(uid 64101\)/)
  })

  t.test('SECRETFS_ADDR is checked the same way', async (t) => {
    const { home, pass } = await victim(t)
    const listener = await startListener(t, ATTACKER, fallbackSocket, 0o777)
    t.teardown(clearFallback)
    const cli = (args: string[]) => runCliAs(VICTIM, args, bareEnv(home, { SECRETFS_ADDR: fallbackSocket }))
    await refusesAll(t, cli, pass, listener, /belongs to another user \(uid 64102\)/)
  })
})

t.test("the victim's own daemon at /tmp/secretfs-UID is still reached", async (t) => {
  if (!(await checkCliRunsAs(t, VICTIM))) return
  await clearFallback()
  t.teardown(clearFallback)
  // Without a home, the daemon and the CLI agree on /tmp/secretfs-UID/secretfs.sock.
  const env = bareEnv()
  const cli = cliCommand()
  const daemon = spawn('setpriv', asUser(VICTIM, { ...cli.env, ...env }, cli.file, [...cli.args, 'server', '--dev']), {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise((resolve) => daemon.on('exit', resolve))
  t.teardown(async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGTERM')
      await exited
    }
  })
  let out = ''
  let err = ''
  daemon.stderr.on('data', (d: Buffer) => (err += d.toString()))
  await new Promise<void>((resolve, reject) => {
    daemon.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (/stop it with/.test(out)) resolve()
    })
    void exited.then(() => reject(new Error(`the daemon exited; stderr:\n${err}`)))
  })
  t.match(out, `listening on ${fallbackSocket}`)
  const as = (args: string[]) => runCliAs(VICTIM, args, { ...env, ...cli.env })
  t.equal((await as(['write', 'secret/db', 'password=hunter2'])).stdout, 'Success! Data written to: secret/db\n')
  t.equal((await as(['read', 'secret/db', '--field', 'password'])).stdout, 'hunter2')
  t.match((await as(['status'])).stdout, new RegExp(`Address +${fallbackSocket}`))
})

t.test('a daemon that accepts and never answers: the CLI gives up after SECRETFS_CLIENT_TIMEOUT', async (t) => {
  const socketPath = path.join(await socketDir(t), 'silent.sock')
  const held: net.Socket[] = []
  const server = net.createServer((c) => held.push(c))
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  t.teardown(() => {
    for (const c of held) c.destroy()
    server.close()
  })
  const r = await runCli(['status'], {
    env: { SECRETFS_ADDR: socketPath, SECRETFS_CLIENT_TIMEOUT: '1' },
    timeoutMs: 20_000,
  })
  t.equal(r.code, 1)
  t.match(r.stderr, `Error: the daemon at ${socketPath} did not answer within 1 s.`)
  t.match(r.stderr, /SECRETFS_CLIENT_TIMEOUT/)
  t.ok(held.length >= 1, 'it did connect')

  const bad = await runCli(['status'], { env: { SECRETFS_ADDR: socketPath, SECRETFS_CLIENT_TIMEOUT: 'soon' } })
  t.equal(bad.code, 2)
  t.match(bad.stderr, /SECRETFS_CLIENT_TIMEOUT must be a number of seconds/)
})
