// Which opens of the low-level mount wake JS (src/fs/lowlevel-mount.ts, the grant): a stored
// secret the kernel holds as it is, and that no handle holds, has its read-only opens (and, after
// a write through the mount, the kernel's request for its size) answered by the addon, from the
// read after JS's first open (or after a write through the mount); anything that changes the
// secret, opens it to write or holds it hands its opens back to JS, and generated content is
// opened by JS every time. The mount is given the addon through a spy that counts the opens and
// GETATTRs JS is asked for.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { Core, builtinBackends } from '../../src/core/core.js'
import { mountLowLevel } from '../../src/fs/lowlevel-mount.js'
import { SecretFs } from '../../src/fs/secret-fs.js'
import { loadFuseLowLevel, type FuseLowLevel } from '../../src/native/fuse-lowlevel.js'
import { MemoryStorage } from '../../src/storage/memory-storage.js'
import { forceUnmount, isMounted } from '../../src/daemon/mountpoint.js'
import { silentLogger } from '../../src/log.js'
import { countingBackend } from '../helpers/counting-backend.js'
import { sh, tempDir, testBinding } from '../helpers/daemon.js'

if (testBinding() !== 'lowlevel') {
  t.pass('only the low-level binding answers opens in the addon')
  process.exit(0)
}

const addon = loadFuseLowLevel()
let jsOpens = 0
let jsGetattrs = 0
const mountCounting: FuseLowLevel['mount'] = (mountpoint, options, handlers) =>
  addon.mount(mountpoint, options, {
    ...handlers,
    open: (req, ino, flags) => {
      jsOpens++
      handlers.open!(req, ino, flags)
    },
    getattr: (req, ino, fh) => {
      jsGetattrs++
      handlers.getattr!(req, ino, fh)
    },
  })
// The addon's functions are read-only properties: the spy inherits them, with its own mount.
const spy = Object.create(addon, { mount: { value: mountCounting } }) as FuseLowLevel

const unlock = { kind: 'key-file', key: Buffer.alloc(32, 5) } as const
const core = new Core({
  storage: new MemoryStorage(),
  log: silentLogger,
  backends: { ...builtinBackends, counting: countingBackend().factory },
})
await core.initialize(unlock)
await core.unseal(unlock)
t.teardown(() => core.close())
const mnt = path.join(await tempDir(t), 'mnt')
await fs.mkdir(mnt, { mode: 0o700 })
const mount = await mountLowLevel(spy, mnt, new SecretFs({ core, log: silentLogger }), silentLogger)
t.teardown(async () => {
  await mount.unmount().catch(() => forceUnmount(mnt))
  if (await isMounted(mnt)) await forceUnmount(mnt)
})

/** What `cmd` printed in the mount, and how many opens JS answered for it. */
async function opened(cmd: string): Promise<[string, number]> {
  const before = jsOpens
  const r = await sh(cmd, { cwd: mnt })
  return [r.stdout + r.stderr, jsOpens - before]
}

/** The kernel sends a RELEASE just after close returns: `cmd`, until the addon answers its every open. */
async function openedByAddon(cmd: string): Promise<[string, number]> {
  for (let deadline = Date.now() + 5000; ; await new Promise((r) => setTimeout(r, 20))) {
    const result = await opened(cmd)
    if (result[1] === 0 || Date.now() > deadline) return result
  }
}

t.test('a stored secret read again: its opens are answered by the addon', async (t) => {
  await core.write('secret/a', Buffer.from('one'))
  await core.changesApplied()
  t.same(await opened('cat secret/a'), ['one', 1], 'the first read: JS opens it')
  t.same(await opened('cat secret/a; cat secret/a; cat secret/a'), ['oneoneone', 0], 'then the addon, JS not woken')
})

t.test('written through the mount: the reads after it are the addon opens', async (t) => {
  t.same(await opened('printf two > secret/a'), ['', 1], 'an open to write is JS')
  await core.changesApplied()
  t.same(await openedByAddon('cat secret/a; cat secret/a'), ['twotwo', 0])
})

t.test("written through the mount: the size the kernel asks for before the read is the addon's too", async (t) => {
  t.equal((await sh('printf four > secret/b', { cwd: mnt })).code, 0, 'created through the mount')
  await core.changesApplied()
  // The grant's attributes are read just after it is made.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const before = jsGetattrs
  t.same(await opened('cat secret/b; stat -c %s secret/b'), ['four4\n', 0], 'no open reached JS')
  t.equal(jsGetattrs - before, 0, 'nor a GETATTR (the write made the kernel drop the size it had)')
})

t.test('changed elsewhere: JS opens it once, then the addon again', async (t) => {
  await core.write('secret/a', Buffer.from('three'))
  await core.changesApplied()
  t.same(await opened('cat secret/a'), ['three', 1], 'not the old content: JS reads the new')
  t.same(await openedByAddon('cat secret/a'), ['three', 0])
})

t.test('held open to write: every open of it is JS, until it is closed', async (t) => {
  // The shell holds it open to read and write (3<>) while cat reads it twice, then writes and closes it.
  t.same(
    await opened('exec 3<> secret/a; cat secret/a; cat secret/a; printf THREE >&3; exec 3>&-'),
    ['threethree', 3],
    'its open to write, and each read while that holds it',
  )
  await core.changesApplied()
  t.same(await openedByAddon('cat secret/a'), ['THREE', 0], 'closed (and committed): the addon again')
})

t.test('generated content: JS makes it at every open', async (t) => {
  t.equal((await sh('mkdir counting', { cwd: mnt })).code, 0)
  for (let i = 0; i < 3; i++) t.equal((await opened('head -c 10 counting/creds'))[1], 1, `open ${i + 1}: JS`)
})

t.test('a seal takes the opens back; unsealed, JS opens it first', async (t) => {
  t.same(await openedByAddon('cat secret/a'), ['THREE', 0])
  await core.seal()
  await core.changesApplied()
  t.match((await opened('cat secret/a'))[0], /Permission denied/, 'sealed: nothing is opened')
  await core.unseal(unlock)
  t.same(await opened('cat secret/a'), ['THREE', 1], 'unsealed: JS opens it')
  t.same(await openedByAddon('cat secret/a'), ['THREE', 0])
})
