// A yardstick for bench-fs: the fastest filesystem secretfs's own binding (src/native/
// fuse-lowlevel.ts) can serve. Files live in a Map, with no storage, no encryption and no checks,
// and it speaks to the kernel as secretfs does: names and attributes kept 1 s, READDIRPLUS
// listings, read-only opens with keep_cache and no FLUSH or RELEASE round trip to JS, writers on
// direct_io, at fsync what was written put in the page cache, and the read-only opens and the
// attributes of a file whose content the kernel holds answered by the addon (a grant, ended by an
// open to write). The benchmark then shows how much of secretfs's time is the binding's.
// Run as root: node dist/scripts/fuse-floor.js MOUNTPOINT (prints "mounted"; SIGTERM unmounts)
import {
  loadFuseLowLevel,
  SET_ATTR_SIZE,
  type Attr,
  type Dirent,
  type Entry,
  type LowLevelHandlers,
  type Request,
} from '../src/native/fuse-lowlevel.js'

const ENOENT = 2
const EEXIST = 17
const ENOTDIR = 20
const EBADF = 9
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const O_ACCMODE = 3
const O_RDONLY = 0
const O_TRUNC = 0o1000
/** Seconds the kernel keeps names and attributes, as secretfs (and gocryptfs). */
const TIMEOUT = 1
/** Bytes the kernel gives one READDIRPLUS entry at least (as lowlevel-mount.ts). */
const DIRENTPLUS_BYTES = 160

interface Node {
  mode: number
  /** A file's content. */
  data: Buffer
  /** A directory's children: name to inode. */
  children?: Map<string, number>
}

const mountpoint = process.argv[2]
if (!mountpoint) throw new Error('usage: fuse-floor MOUNTPOINT')
const fuse = loadFuseLowLevel()
const now = Date.now()
const nodes = new Map<number, Node>([[1, { mode: S_IFDIR | 0o700, data: Buffer.alloc(0), children: new Map() }]])
let nextIno = 2
/** Open directories: the names read at opendir, served in chunks by offset. */
const dirs = new Map<number, string[]>()
let nextDir = 1
/** Inodes whose read-only opens (and attributes) the addon answers. */
const granted = new Set<number>()
const grant = (ino: number) => {
  if (granted.has(ino) || !fuse.grant(session, ino, 0)) return
  granted.add(ino)
  fuse.grantAttributes(session, ino, 0, attr(ino, nodes.get(ino)!), TIMEOUT)
}
const revoke = (ino: number) => void (granted.delete(ino) && fuse.revoke(session, ino))

const attr = (ino: number, n: Node): Attr => ({
  ino,
  mode: n.mode,
  nlink: 1,
  uid: process.getuid!(),
  gid: process.getgid!(),
  size: n.data.length,
  atime: now,
  mtime: now,
  ctime: now,
})
/** `data` cut or zero-padded to `size` bytes. */
const resized = (data: Buffer, size: number) => {
  const out = Buffer.alloc(size)
  data.copy(out, 0, 0, size)
  return out
}
const entry = (ino: number): Entry => ({
  ino,
  attr: attr(ino, nodes.get(ino)!),
  attrTimeout: TIMEOUT,
  entryTimeout: TIMEOUT,
})
/** Adds `name` to directory `parent`; answers the error and returns undefined if it cannot. */
const add = (req: Request, parent: number, name: string, mode: number): number | undefined => {
  const children = nodes.get(parent)?.children
  if (!children) return void fuse.replyErr(req, ENOTDIR)
  if (children.has(name)) return void fuse.replyErr(req, EEXIST)
  const ino = nextIno++
  nodes.set(ino, { mode, data: Buffer.alloc(0), children: mode & S_IFDIR ? new Map() : undefined })
  children.set(name, ino)
  return ino
}

const handlers: LowLevelHandlers = {
  lookup(req, parent, name) {
    const ino = nodes.get(parent)?.children?.get(name)
    if (ino === undefined) return void fuse.replyErr(req, ENOENT)
    fuse.replyEntry(req, entry(ino))
  },
  // Nothing is ever removed: every inode lives as long as the mount, whatever the kernel forgets.
  forget() {},
  getattr(req, ino) {
    const n = nodes.get(ino)
    if (n) fuse.replyAttr(req, attr(ino, n), TIMEOUT)
    else fuse.replyErr(req, ENOENT)
  },
  setattr(req, ino, toSet, size) {
    const n = nodes.get(ino)
    if (!n) return void fuse.replyErr(req, ENOENT)
    if (toSet & SET_ATTR_SIZE) {
      revoke(ino)
      n.data = resized(n.data, size)
    }
    fuse.replyAttr(req, attr(ino, n), TIMEOUT)
  },
  mkdir(req, parent, name) {
    const ino = add(req, parent, name, S_IFDIR | 0o700)
    if (ino !== undefined) fuse.replyEntry(req, entry(ino))
  },
  create(req, parent, name) {
    const ino = add(req, parent, name, S_IFREG | 0o600)
    if (ino !== undefined) fuse.replyCreate(req, entry(ino), { fh: 0, directIo: true })
  },
  open(req, ino, flags) {
    const n = nodes.get(ino)
    if (!n) return void fuse.replyErr(req, ENOENT)
    if (flags & O_TRUNC) n.data = Buffer.alloc(0)
    // A reader of stored content: kept in the page cache, closed without a word to JS; the next
    // readers are the addon's, until a writer comes.
    if ((flags & (O_ACCMODE | O_TRUNC)) === O_RDONLY) {
      fuse.replyOpen(req, { fh: 0, readOnly: true, keepCache: true })
      return grant(ino)
    }
    revoke(ino)
    fuse.replyOpen(req, { fh: 0, directIo: true })
  },
  read(req, ino, size, off) {
    const n = nodes.get(ino)
    if (n) fuse.replyBuf(req, n.data.subarray(off, off + size))
    else fuse.replyErr(req, EBADF)
  },
  write(req, ino, data, off) {
    const n = nodes.get(ino)
    if (!n) return void fuse.replyErr(req, EBADF)
    if (off + data.length > n.data.length) n.data = resized(n.data, off + data.length)
    data.copy(n.data, off)
    fuse.replyWrite(req, data.length)
  },
  flush: (req) => void fuse.replyErr(req, 0),
  release: (req) => void (req && fuse.replyErr(req, 0)),
  // What was written is put in the page cache, as secretfs does at a commit (kernel-cache.ts).
  fsync(req, ino) {
    const n = nodes.get(ino)
    if (n && n.data.length > 0) fuse.invalidate(session, ino, undefined, (result) => result === 0 && grant(ino), n.data)
    fuse.replyErr(req, 0)
  },
  opendir(req, ino) {
    const children = nodes.get(ino)?.children
    if (!children) return void fuse.replyErr(req, ENOTDIR)
    const dh = nextDir++
    dirs.set(dh, ['.', '..', ...children.keys()])
    fuse.replyOpen(req, { fh: dh * 2 })
  },
  readdirplus(req, ino, size, off, fh) {
    const names = dirs.get(fh / 2)
    const children = nodes.get(ino)?.children
    if (!names || !children) return void fuse.replyErr(req, EBADF)
    const items = names.slice(off, off + Math.ceil(size / DIRENTPLUS_BYTES) + 1).map((name, i): Dirent => {
      const next = off + i + 1
      if (name === '.' || name === '..') return { name, off: next, ino: name === '.' ? ino : 1, mode: S_IFDIR }
      const child = children.get(name)!
      return { name, off: next, ino: child, mode: nodes.get(child)!.mode, entry: entry(child) }
    })
    fuse.replyDirents(req, items, size)
  },
  releasedir: (_req, _ino, fh) => void dirs.delete(fh / 2),
}

const session = fuse.mount(mountpoint, 'fsname=fuse-floor,subtype=fuse-floor', handlers)
console.log('mounted')
process.on('SIGTERM', () => {
  fuse.unmount(session)
  process.exit(0)
})
