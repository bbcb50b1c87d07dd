// A yardstick for bench-fs: the fastest filesystem fuse-native can serve. It keeps files in a
// Map, with no storage, no encryption and no checks, on the very mount options and event-loop
// polling secretfs uses, so that the benchmark shows how much of secretfs's time is the binding's
// own (a request crosses from a libfuse thread to the JS thread and back).
// Run: node dist/scripts/fuse-floor.js MOUNTPOINT (prints "mounted"; SIGTERM unmounts)
import FuseNative from 'fuse-native'
import type { Stat } from 'fuse-native'
import { FUSE_OPTIONS } from '../src/fs/fuse-mount.js'
import { HotLoop } from '../src/fs/hot-loop.js'

const ENOENT = -2
const EEXIST = -17
const S_IFDIR = 0o040000
const S_IFREG = 0o100000

const mountpoint = process.argv[2]
if (!mountpoint) throw new Error('usage: fuse-floor MOUNTPOINT')
const hot = new HotLoop()
const now = new Date()
const dirs = new Set<string>(['/'])
const files = new Map<string, Buffer>()
const handles = new Map<number, string>()
let nextFd = 1

const stat = (mode: number, size: number): Stat => ({
  mode,
  uid: process.getuid!(),
  gid: process.getgid!(),
  size,
  nlink: 1,
  blksize: 4096,
  blocks: Math.ceil(size / 512),
  atime: now,
  mtime: now,
  ctime: now,
})
const open = (path: string) => {
  handles.set(nextFd, path)
  return nextFd++
}

const fuse = new FuseNative(
  mountpoint,
  {
    getattr: (path, cb) => {
      hot.touch()
      if (dirs.has(path)) return cb(0, stat(S_IFDIR | 0o700, 0))
      const file = files.get(path)
      return file ? cb(0, stat(S_IFREG | 0o600, file.length)) : cb(ENOENT)
    },
    readdir: (path, cb) => {
      hot.touch()
      const inside = path === '/' ? '/' : path + '/'
      const names = [...dirs, ...files.keys()]
        .filter((p) => p.startsWith(inside) && p !== inside && !p.slice(inside.length).includes('/'))
        .map((p) => p.slice(inside.length))
      cb(0, ['.', '..', ...names])
    },
    mkdir: (path, _mode, cb) => {
      hot.touch()
      if (dirs.has(path) || files.has(path)) return cb(EEXIST)
      dirs.add(path)
      cb(0)
    },
    create: (path, _mode, cb) => {
      hot.touch()
      files.set(path, Buffer.alloc(0))
      cb(0, open(path))
    },
    open: (path, _flags, cb) => {
      hot.touch()
      return files.has(path) ? cb(0, open(path)) : cb(ENOENT)
    },
    read: (_path, fd, buf, len, pos, cb) => {
      hot.touch()
      const file = files.get(handles.get(fd) ?? '') ?? Buffer.alloc(0)
      cb(file.copy(buf, 0, pos, Math.min(file.length, pos + len)))
    },
    write: (_path, fd, buf, len, pos, cb) => {
      hot.touch()
      const path = handles.get(fd) ?? ''
      const old = files.get(path) ?? Buffer.alloc(0)
      const next = Buffer.alloc(Math.max(old.length, pos + len))
      old.copy(next)
      buf.copy(next, pos, 0, len)
      files.set(path, next)
      cb(len)
    },
    flush: (_path, _fd, cb) => {
      hot.touch()
      cb(0)
    },
    release: (_path, fd, cb) => {
      hot.touch()
      handles.delete(fd)
      cb(0)
    },
  },
  { ...FUSE_OPTIONS, fsname: FUSE_OPTIONS.fsname!.replace('secretfs', 'fuse-floor'), subtype: 'fuse-floor' },
)
fuse.mount((err) => {
  if (err) throw err
  console.log('mounted')
})
process.on('SIGTERM', () => fuse.unmount(() => process.exit(0)))
