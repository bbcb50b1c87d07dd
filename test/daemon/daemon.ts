// Issue 3, item 6: the daemon's lifecycle, run as `secretfs server` in a child process.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { Daemon } from '../../src/daemon/daemon.js'
import { isMounted } from '../../src/daemon/mountpoint.js'
import { coreWith } from '../helpers/api-fixture.js'
import { captureLog } from '../helpers/capture-log.js'
import { cliCommand, realStore, sh, startDaemon, tempDir } from '../helpers/daemon.js'
import { fdDriver } from '../helpers/fd-driver.js'
import { watchSecureMemory } from '../helpers/secure-memory.js'

t.test('--dev: says where it mounted and how to stop; SIGTERM unmounts and exits 0', async (t) => {
  const d = await startDaemon(t)
  t.match(d.stdout(), `mounted at ${d.mountpoint}`)
  t.match(d.stdout(), /in-memory/)
  t.match(d.stdout(), new RegExp(`kill -TERM ${d.child.pid}`))
  t.equal((await sh('echo hi > secret/x && cat secret/x', { cwd: d.mountpoint })).stdout, 'hi\n')
  t.same(await d.stop('SIGTERM'), { code: 0, signal: null })
  t.notOk(await isMounted(d.mountpoint), 'unmounted')
  t.match(d.stderr(), /stopped; keys zeroed/)
})

t.test('SIGINT also stops it cleanly', async (t) => {
  const d = await startDaemon(t)
  t.same(await d.stop('SIGINT'), { code: 0, signal: null })
  t.notOk(await isMounted(d.mountpoint))
})

t.test('a real store: initialised on first start, unsealed from a key file, kept across restarts', async (t) => {
  const { dir, args, mountpoint } = await realStore(t, 5)
  const data = path.join(dir, 'data')
  const first = await startDaemon(t, { args, mountpoint })
  t.match(first.stderr(), /initialised a new store/)
  t.equal((await sh('mkdir -p secret/a && echo durable > secret/a/b', { cwd: mountpoint })).code, 0)
  // A writer still holding its file open when the daemon is stopped: its write is finished.
  const writer = fdDriver(t, mountpoint)
  await writer.write(await writer.open('secret/open', 'w'), 'in flight')
  t.same(await first.stop(), { code: 0, signal: null })
  t.equal((await fs.stat(data)).mode & 0o777, 0o700, 'data directory 0700')
  t.equal((await fs.stat(path.join(data, 'secretfs.db'))).mode & 0o777, 0o600, 'store 0600')
  const second = await startDaemon(t, { args, mountpoint })
  t.notMatch(second.stderr(), /initialised/)
  t.equal((await sh('cat secret/a/b secret/open', { cwd: mountpoint })).stdout, 'durable\nin flight')
  t.same(await second.stop(), { code: 0, signal: null })
})

t.test('a passphrase file unseals; a wrong one is refused and nothing is mounted', async (t) => {
  const dir = await tempDir(t)
  const data = path.join(dir, 'data')
  await fs.writeFile(path.join(dir, 'pass'), 'correct horse\n', { mode: 0o600 })
  await fs.writeFile(path.join(dir, 'wrong'), 'battery staple\n', { mode: 0o600 })
  const mountpoint = path.join(dir, 'mnt')
  const ok = await startDaemon(t, { args: ['--data', data, '--passphrase-file', path.join(dir, 'pass')], mountpoint })
  t.equal((await sh('echo kept > secret/p && cat secret/p', { cwd: mountpoint })).stdout, 'kept\n')
  t.same(await ok.stop(), { code: 0, signal: null })
  const bad = await startDaemon(t, {
    args: ['--data', data, '--passphrase-file', path.join(dir, 'wrong')],
    mountpoint,
    wait: 'exit',
  })
  t.equal((await bad.exited).code, 1)
  t.match(bad.stderr(), /wrong passphrase/)
  t.notOk(await isMounted(mountpoint))
})

t.test('a dead mount left by kill -9 is cleared at the next start', async (t) => {
  const mountpoint = path.join(await tempDir(t), 'mnt')
  const crashed = await startDaemon(t, { mountpoint })
  t.same(await crashed.stop('SIGKILL'), { code: null, signal: 'SIGKILL' })
  t.ok(await isMounted(mountpoint), 'the mount is left behind')
  await t.rejects(fs.stat(mountpoint), { code: 'ENOTCONN' }, 'Transport endpoint is not connected')
  const next = await startDaemon(t, { mountpoint })
  t.match(next.stderr(), /cleared a dead mount/)
  t.equal((await sh('ls', { cwd: mountpoint })).stdout, 'secret\nsys\n')
  t.same(await next.stop(), { code: 0, signal: null })
  t.notOk(await isMounted(mountpoint))
})

t.test('a missing mountpoint is created (0700); one that holds files is refused', async (t) => {
  const dir = await tempDir(t)
  const created = path.join(dir, 'new/deeper')
  const d = await startDaemon(t, { mountpoint: created })
  await d.stop()
  t.equal((await fs.stat(created)).mode & 0o777, 0o700)
  const full = path.join(dir, 'full')
  await fs.mkdir(full)
  await fs.writeFile(path.join(full, 'file'), '')
  const refused = await startDaemon(t, { mountpoint: full, wait: 'exit' })
  t.equal((await refused.exited).code, 1)
  t.match(refused.stderr(), /is not empty/)
  t.notOk(await isMounted(full))
  const busy = await startDaemon(t)
  const second = await startDaemon(t, { mountpoint: busy.mountpoint, wait: 'exit' })
  t.equal((await second.exited).code, 1)
  t.match(second.stderr(), /already a mountpoint/)
})

t.test('without fusermount, the daemon on fuse-native says what to install', async (t) => {
  const d = await startDaemon(t, { env: { PATH: '/nonexistent', SECRETFS_FUSE: 'fuse-native' }, wait: 'exit' })
  t.equal((await d.exited).code, 1)
  t.match(d.stderr(), /fusermount is missing.*apt-get install fuse/)
  t.notMatch(d.stderr(), /at .*\.js:\d+/, 'no stack trace')
})

t.test(
  'as root, the low-level binding needs no fusermount: it mounts and unmounts with the system calls',
  async (t) => {
    if (process.getuid?.() !== 0) return t.plan(0, 'runs as root only')
    const d = await startDaemon(t, { env: { PATH: '/nonexistent', SECRETFS_FUSE: 'lowlevel' } })
    t.match(d.stderr(), /filesystem mounted \(lowlevel\)/)
    t.ok(await isMounted(d.mountpoint))
    t.same(await d.stop(), { code: 0, signal: null })
    t.notOk(await isMounted(d.mountpoint), 'unmounted at SIGTERM')
  },
)

t.test('usage errors are plain messages', async (t) => {
  const none = await startDaemon(t, { args: [], wait: 'exit' })
  t.match(none.stderr(), /no terminal to ask for the passphrase.*--sealed/)
  const both = await startDaemon(t, {
    args: ['--data', '/tmp/x', '--key-file', 'a', '--passphrase-file', 'b'],
    wait: 'exit',
  })
  t.match(both.stderr(), /either --passphrase-file or --key-file, not both/)
})

t.test('--sealed: a store made by init starts sealed; the mount and the API refuse until unsealed', async (t) => {
  const dir = await tempDir(t)
  const data = path.join(dir, 'data')
  const key = path.join(dir, 'key')
  const { runCli } = await import('../helpers/cli-run.js')
  t.equal((await runCli(['init', '--data', data, '--key-file', key])).code, 0)
  const d = await startDaemon(t, { args: ['--data', data, '--sealed'] })
  t.match(d.stdout(), /sealed: unseal it with `secretfs unseal`/)
  const env = { SECRETFS_ADDR: d.socketPath }
  t.match((await runCli(['read', 'secret/x'], { env })).stderr, /secretfs is sealed/)
  const refused = await sh('ls secret', { cwd: d.mountpoint })
  t.same([refused.code, refused.stdout], [2, ''], 'the mount refuses while sealed')
  t.match(refused.stderr, /cannot access 'secret': Permission denied/)
  t.equal((await runCli(['unseal', '--key-file', key], { env })).code, 0)
  t.equal((await sh('echo v > secret/x && cat secret/x', { cwd: d.mountpoint })).stdout, 'v\n')
})

t.test('--sealed without a store says how to make one', async (t) => {
  const data = path.join(await tempDir(t), 'data')
  const d = await startDaemon(t, { args: ['--data', data, '--sealed'], wait: 'exit' })
  t.equal((await d.exited).code, 1)
  t.match(d.stderr(), new RegExp(`no store in ${data} yet; create one with: secretfs init --data ${data}`))
})

t.test('without --mountpoint only the control API is served; --address gets the export line', async (t) => {
  const sock = path.join(await tempDir(t), 'elsewhere.sock')
  const d = await startDaemon(t, { args: ['--dev', '--address', sock], mountpoint: false })
  t.notMatch(d.stdout(), /mounted at/)
  t.match(d.stdout(), `control API listening on ${sock}`)
  t.match(d.stdout(), `export SECRETFS_ADDR='${sock}'`)
  t.equal((await fs.stat(sock)).mode & 0o777, 0o600, 'the socket is 0600')
  const { runCli } = await import('../helpers/cli-run.js')
  const r = await runCli(['mounts'], { env: { SECRETFS_ADDR: sock } })
  t.match(r.stdout, /^Path +Type +Description\nsecret\/ +generic +generic secret storage\nsys\/ +system/)
  t.same(await d.stop(), { code: 0, signal: null })
})

// A uid with no passwd entry, for the daemon and for the process of the same user that attacks it.
const OTHER_UID = 64001
const NOBODY = 65534
const asUser = (uid: number) => [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups']
const run = promisify(execFile)

/** What a process running as `uid` gets when it reads /proc/PID/environ and opens /proc/PID/mem. */
async function probeMemory(uid: number, pid: number): Promise<{ environ: string; mem: string }> {
  const script = `
const fs = require('fs')
const attempt = (f) => { try { f(); return 'read' } catch (e) { return e.code } }
console.log(JSON.stringify({
  environ: attempt(() => fs.readFileSync('/proc/${pid}/environ')),
  mem: attempt(() => fs.closeSync(fs.openSync('/proc/${pid}/mem', 'r'))),
}))`
  const { stdout } = await run('setpriv', [...asUser(uid), process.execPath, '-e', script])
  return JSON.parse(stdout)
}

t.test('a process of the same user cannot read the daemon memory or environment; no core file', async (t) => {
  const dir = await tempDir(t)
  await fs.chown(dir, OTHER_UID, OTHER_UID)
  // The control: an ordinary process of that user is open to it, so a refusal below is the daemon's.
  const plain = spawn('setpriv', [...asUser(OTHER_UID), 'sleep', '600'], { stdio: 'ignore' })
  t.teardown(() => plain.kill('SIGKILL'))
  t.same(await probeMemory(OTHER_UID, plain.pid!), { environ: 'read', mem: 'read' }, 'an ordinary process is readable')

  const d = await startDaemon(t, {
    mountpoint: false,
    runThrough: ['setpriv', ...asUser(OTHER_UID)],
    env: { SECRETFS_ADDR: path.join(dir, 'api', 'secretfs.sock') },
  })
  const pid = d.child.pid!
  t.same(await probeMemory(OTHER_UID, pid), { environ: 'EACCES', mem: 'EACCES' }, 'the daemon is not')
  t.match(await fs.readFile(`/proc/${pid}/limits`, 'utf8'), /^Max core file size +0 +0 +bytes/m, 'no core file')
  // Asked directly: the CLI, run as root, rightly refuses a socket of another user.
  const { request } = await import('../helpers/api-fixture.js')
  t.same((await request(d.socketPath, 'GET', '/v1/sys/seal-status')).json.sealed, false, 'it serves')
  t.same(await d.stop(), { code: 0, signal: null })
})

t.test('a daemon that is not root mounts through fusermount3, for its user alone, and unmounts', async (t) => {
  // libfuse opens /dev/fuse itself before it turns to fusermount3: Debian's udev rule makes it
  // 0666, which a container without udev lacks. Given that mode here, and put back after.
  const { mode } = await fs.stat('/dev/fuse')
  await fs.chmod('/dev/fuse', 0o666)
  t.teardown(() => fs.chmod('/dev/fuse', mode & 0o777))
  // fusermount3 needs a user with a passwd entry.
  const dir = await tempDir(t)
  await fs.chown(dir, NOBODY, NOBODY)
  const mountpoint = path.join(dir, 'mnt')
  const d = await startDaemon(t, {
    mountpoint,
    runThrough: ['setpriv', ...asUser(NOBODY)],
    env: { SECRETFS_ADDR: path.join(dir, 'api', 'secretfs.sock') },
  })
  const mounts = await fs.readFile('/proc/self/mounts', 'utf8')
  const line = mounts.split('\n').find((l) => l.split(' ')[1] === mountpoint) ?? ''
  t.match(line, /^secretfs \S+ fuse\.secretfs /, 'mounted')
  t.match(line, new RegExp(`user_id=${NOBODY},`), "as the daemon's user")
  t.notMatch(line, /allow_other/)
  const asOwner = await run('setpriv', [...asUser(NOBODY), 'cat', path.join(mountpoint, 'sys/mounts')])
  t.match(asOwner.stdout, /^secret\/ +generic/m, 'its user reads it')
  t.match((await sh(`ls ${mountpoint}`)).stderr, /Permission denied/, 'root does not')
  t.same(await d.stop(), { code: 0, signal: null })
  t.notOk(await isMounted(mountpoint), 'SIGTERM unmounted it (fusermount3 -u)')
})

t.test('without the secretfs_native addon the daemon refuses to start, and says how to build it', async (t) => {
  // A copy of secretfs without build/: the code and its dependencies, as a checkout that skipped
  // the install step would have them.
  const root = path.resolve(import.meta.dirname, '../..')
  const copy = path.join(await tempDir(t), 'secretfs')
  const built = process.env.SECRETFS_TEST_BUILT === '1'
  for (const entry of ['package.json', 'tsconfig.json', built ? 'dist' : 'src'])
    await fs.cp(path.join(root, entry), path.join(copy, entry), { recursive: true })
  await fs.symlink(path.join(root, 'node_modules'), path.join(copy, 'node_modules'))
  const cli = cliCommand(built)
  const args = cli.args.map((a) =>
    a.startsWith(root + '/') && !a.includes('node_modules') ? a.replace(root, copy) : a,
  )
  const sock = path.join(await tempDir(t), 'api', 'secretfs.sock')
  const child = spawn(cli.file, [...args, 'server', '--dev', '--address', sock], {
    env: { ...process.env, ...cli.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => child.kill('SIGKILL'))
  const r = { code: null as number | null, stdout: '', stderr: '' }
  child.stdout.on('data', (d: Buffer) => (r.stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()))
  // Killed after 30 s if it starts anyway, as it would without the check.
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  r.code = await new Promise((resolve) => child.on('exit', resolve))
  clearTimeout(timer)
  t.equal(r.code, 1)
  t.match(
    r.stderr,
    /^secretfs server: cannot load the secretfs_native addon \(build\/Release\/secretfs_native\.node: Cannot find module .*\), which keeps other processes out of the daemon's memory; build it with `npm ci`/,
  )
  t.notMatch(r.stdout, /listening/)
  await t.rejects(fs.stat(sock), { code: 'ENOENT' }, 'no socket was made')
})

t.test('stopping the daemon zeroes every key it held', async (t) => {
  const memory = watchSecureMemory(t)
  const core = await coreWith({ kind: 'key-file', key: Buffer.alloc(32, 6) })
  t.teardown(() => core.close())
  const log = captureLog()
  const daemon = await Daemon.start({
    core,
    socketPath: path.join(await tempDir(t, 'sfs-zero-'), 'api.sock'),
    log,
    print: () => {},
    mode: 'test',
  })
  t.ok(memory.notZeroed().length > 0, 'keys are held while it runs')
  await daemon.stop()
  t.same(memory.notZeroed(), [], 'every buffer of secure memory is zeros')
  t.same(log.lines.slice(-1), ['[info] stopped; keys zeroed'])
})
