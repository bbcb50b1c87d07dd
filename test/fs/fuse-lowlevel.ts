// The low-level binding on its own, serving a tiny filesystem from this process: a handler that
// throws is EIO for the caller (and the daemon lives on), a read-only handle's close never wakes
// JS for a FLUSH and its RELEASE is answered before JS hears of it, requests that queue up while
// others are served are all answered, an idle session costs no CPU, READDIRPLUS gives `ls -l` its
// attributes with no LOOKUP per name, a read interrupted by a signal is answered EINTR at once, the
// kernel gives back what its page cache holds of a file (retrieve), the addon answers the opens of
// a file JS granted it (and their releases, and its GETATTRs once given the attributes) until JS
// revokes the grant, and the kernel never forgets more lookups than it was given.
import t from 'tap'
import fs from 'node:fs/promises'
import path from 'node:path'
import {
  loadFuseLowLevel,
  type Attr,
  type Entry,
  type LowLevelHandlers,
  type Request,
} from '../../src/native/fuse-lowlevel.js'
import { forceUnmount, isMounted } from '../../src/daemon/mountpoint.js'
import { sh, tempDir } from '../helpers/daemon.js'
import { fdDriver } from '../helpers/fd-driver.js'

const fuse = loadFuseLowLevel()
const CONTENT = Buffer.from('hello\n')
const now = Date.now()
const attr = (ino: number, mode: number, size = 0): Attr => ({
  ino,
  mode,
  nlink: 1,
  uid: process.getuid!(),
  gid: process.getgid!(),
  size,
  atime: now,
  mtime: now,
  ctime: now,
})
const FILES = new Map([
  ['file', 2],
  ['other', 3],
  ['slow', 4],
])
const SLOW = 4
/** Opened with the page cache kept. */
const CACHED = 3
const attrOf = (ino: number) => (ino === 1 ? attr(1, 0o040700) : attr(ino, 0o100400, CONTENT.length))
const entry = (ino: number): Entry => ({ ino, attr: attrOf(ino), attrTimeout: 5, entryTimeout: 5 })

t.test('a tiny filesystem on the binding', async (t) => {
  const calls: string[] = []
  /** The read of 'slow', left unanswered. */
  let slowRead: Request | undefined
  const lookups = new Map<number, number>()
  const handlers: LowLevelHandlers = {
    lookup(req, _parent, name) {
      calls.push(`lookup ${name}`)
      if (name === 'boom') throw new Error('a handler that throws')
      const ino = FILES.get(name)
      if (!ino) return void fuse.replyErr(req, 2)
      lookups.set(ino, (lookups.get(ino) ?? 0) + 1)
      fuse.replyEntry(req, entry(ino))
    },
    forget(ino, n) {
      lookups.set(ino, (lookups.get(ino) ?? 0) - n)
    },
    getattr(req, ino) {
      calls.push(`getattr ${ino}`)
      fuse.replyAttr(req, attrOf(ino), 0)
    },
    open(req, ino) {
      calls.push(`open ${ino}`)
      // Answered later, as a handler that awaits the store would.
      const cached = ino === CACHED
      setImmediate(() => fuse.replyOpen(req, { fh: 10, readOnly: true, directIo: !cached, keepCache: cached }))
    },
    read(req, ino, size, off) {
      // Not answered until the test says: a reader sent a signal is answered EINTR by the binding.
      if (ino === SLOW) return void (slowRead = req)
      fuse.replyBuf(req, CONTENT.subarray(off, off + size))
    },
    flush(req) {
      calls.push('flush')
      fuse.replyErr(req, 0)
    },
    release(req, _ino, fh) {
      calls.push(`release ${fh} ${req === undefined ? 'answered already' : 'to answer'}`)
      if (req) fuse.replyErr(req, 0)
    },
    opendir: (req) => void fuse.replyOpen(req, { fh: 20 }),
    readdirplus(req, _ino, size, off) {
      calls.push('readdirplus')
      const all = [
        { name: '.', off: 1, ino: 1, mode: 0o040000 },
        { name: '..', off: 2, ino: 1, mode: 0o040000 },
        ...[...FILES].map(([name, ino], i) => ({ name, off: 3 + i, ino, mode: 0o100000, entry: entry(ino) })),
      ].slice(off)
      const fitted = fuse.replyDirents(req, all, size)
      for (const d of all.slice(0, fitted)) if ('entry' in d) lookups.set(d.ino, (lookups.get(d.ino) ?? 0) + 1)
    },
  }
  const mnt = path.join(await tempDir(t), 'mnt')
  await fs.mkdir(mnt)
  const session = fuse.mount(mnt, 'fsname=secretfs-test,subtype=secretfs-test', handlers)
  let mounted = true
  t.teardown(async () => {
    if (mounted) fuse.unmount(session)
    if (await isMounted(mnt)) await forceUnmount(mnt)
  })

  // Attributes and names are cached for 5 s: each name is asked for once.
  const boom = await sh(`stat '${mnt}/boom'`)
  t.not(boom.code, 0)
  t.match(boom.stderr, /Input\/output error/, 'a handler that throws is EIO')

  calls.length = 0
  t.equal((await sh(`cat '${mnt}/file'`)).stdout, CONTENT.toString(), 'an open answered later, then a read')
  t.notOk(calls.includes('flush'), 'no FLUSH for a read-only handle')
  t.ok(
    // The handle as the binding gives it back: the number and the read-only bit it keeps.
    await until(() => calls.includes('release 11 answered already')),
    'its RELEASE answered by the binding, and JS told',
  )

  // Many programs at once: the requests that wait while others are served are read too.
  const before = process.cpuUsage()
  const many = await sh(`for i in $(seq 64); do cat '${mnt}/file' > /dev/null & done; wait; echo done`)
  t.equal(many.stdout, 'done\n', 'sixty-four cats at once, each answered')
  // Once every request is answered, the binding looks for the next for a moment, then sleeps.
  await new Promise((resolve) => setTimeout(resolve, 500))
  const used = process.cpuUsage(before)
  t.ok((used.user + used.system) / 1000 < 250, 'serving them, then idle, took little CPU: the looking ends')

  calls.length = 0
  const ls = await sh(`ls -l '${mnt}'`)
  t.match(ls.stdout, /-r-------- 1 \S+ \S+ 6 .* file\n/)
  t.match(ls.stdout, /other\n/)
  t.notOk(
    calls.some((c) => c.startsWith('lookup')),
    'ls -l needs no LOOKUP: READDIRPLUS carried the attributes',
  )

  const retrieve = (ino: number) =>
    new Promise<[number, string | undefined]>((resolve) =>
      fuse.retrieve(session, ino, 1 << 20, (result, content) => resolve([result, content?.toString()])),
    )
  t.equal((await sh(`cat '${mnt}/other'`)).stdout, CONTENT.toString())
  t.same(await retrieve(CACHED), [0, CONTENT.toString()], 'retrieve gives back what the page cache holds')
  t.same(await retrieve(2), [0, ''], 'and nothing of a file read past it (direct_io)')
  t.equal((await retrieve(999))[0], -2, 'an inode the kernel does not have is ENOENT')

  // A grant: the addon answers read-only opens of the inode by itself, with the handle given, and
  // the RELEASEs of handles with that number; given the attributes, its GETATTRs too (asked here
  // at every read: JS answers them with a timeout of 0).
  t.ok(fuse.grant(session, CACHED, 30), 'granted')
  t.notOk(fuse.grant(session, CACHED, 40), 'once: a second grant of the inode is refused')
  const granted = { ...attrOf(CACHED), mtime: 1e12 }
  t.notOk(fuse.grantAttributes(session, CACHED, 40, granted, 5), 'attributes are not given to another number')
  t.ok(fuse.grantAttributes(session, CACHED, 30, granted, 5), 'attributes given to the grant')
  const dropAttributes = () => new Promise((resolve) => fuse.invalidate(session, CACHED, undefined, resolve))
  t.equal(await dropAttributes(), 0)
  calls.length = 0
  for (let i = 0; i < 3; i++)
    t.equal((await sh(`cat '${mnt}/other'`)).stdout, CONTENT.toString(), 'read, from the page cache')
  // Descriptors held by another process (this one serves the mount), in the mount's parent.
  const driver = fdDriver(t, path.dirname(mnt))
  const holder = await driver.open('mnt/other', 'r')
  t.equal((await sh(`stat -c %Y '${mnt}/other'`)).stdout, '1000000000\n', 'stat: the attributes given')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(calls, [], 'no open, RELEASE or GETATTR reached JS')
  t.equal((await sh(`: >> '${mnt}/other'`)).code, 0)
  t.ok(calls.includes(`open ${CACHED}`), 'an open to write still reaches JS')
  t.equal(fuse.revoke(session, CACHED), 1, 'the revoke tells how many of its handles are still open')
  t.equal(fuse.revoke(session, CACHED), undefined, 'a second revoke finds no grant')
  calls.length = 0
  await driver.close(holder)
  t.ok(
    await until(() => calls.includes('release 31 answered already')),
    'revoked: the RELEASE of the handle still open reaches JS, with the number granted',
  )
  calls.length = 0
  t.equal(await dropAttributes(), 0)
  t.equal((await sh(`cat '${mnt}/other'`)).stdout, CONTENT.toString())
  t.ok(calls.includes(`open ${CACHED}`), 'revoked: opens reach JS again')
  t.ok(calls.includes(`getattr ${CACHED}`), 'and GETATTRs')
  // A handle JS gave, released under a grant of its number: the count goes below none.
  const given = await driver.open('mnt/other', 'r')
  t.ok(fuse.grant(session, CACHED, 10), 'granted the number JS gives')
  calls.length = 0
  await driver.close(given)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.notOk(calls.includes('release 11 answered already'), "its RELEASE was the addon's")
  t.equal(fuse.revoke(session, CACHED), -1, 'and the revoke counts it: one released it did not open')
  // Many inodes, granted and revoked in turns: each grant is found, and only its own.
  const inos = Array.from({ length: 500 }, (_, i) => 1000 + i * 7919)
  t.ok(
    inos.every((ino) => fuse.grant(session, ino, ino * 2)),
    'five hundred grants',
  )
  t.ok(
    inos.filter((_, i) => i % 2 === 0).every((ino) => fuse.revoke(session, ino) === 0),
    'half revoked, each found',
  )
  t.ok(
    inos.every((ino, i) => fuse.revoke(session, ino) === (i % 2 === 0 ? undefined : 0)),
    'the other half found after the removals, and the first half gone',
  )

  const interrupted = await sh(`timeout -s INT 0.5 cat '${mnt}/slow'`)
  t.notOk(interrupted.timedOut, 'cat did not hang on the unanswered read')
  t.equal(interrupted.code, 124, 'it was stopped by its signal: the INTERRUPT was answered EINTR')
  t.ok(slowRead, 'while the read was still unanswered')
  t.equal(fuse.replyBuf(slowRead!, CONTENT), -114, 'whose answer now goes nowhere (EALREADY)')

  fuse.unmount(session)
  mounted = false
  t.notOk(await isMounted(mnt), 'unmounted')
  t.same(await retrieve(CACHED), [-107, undefined], 'after an unmount, a retrieve is ENOTCONN at once')
  t.notOk(fuse.grant(session, CACHED, 30), 'nor is anything granted')
  // Forgetting is up to the kernel: at unmount it drops what it held, and may not send FORGET first.
  t.ok(
    [...lookups.values()].every((n) => n >= 0),
    'never more forgets than lookups',
  )
})

async function until(check: () => boolean): Promise<boolean> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20))
  return check()
}
