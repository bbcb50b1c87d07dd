// The secretfs_fuse addon (fuse-lowlevel.c), typed: libfuse 3's low-level API on Node's event
// loop. It speaks inodes and requests and knows nothing of secrets; src/fs/lowlevel-mount.ts
// puts SecretFs on it. A request is answered exactly once, by one of the reply functions, now or
// later; one that JS drops unanswered is answered EIO when it is collected.

import { createRequire } from 'node:module'
import path from 'node:path'
import { packageRoot } from './secretfs-native.js'

/** A kernel request, opaque: answered by one reply call. */
export type Request = { readonly __request: unique symbol }

export interface Attr {
  ino: number
  mode: number
  nlink: number
  uid: number
  gid: number
  size: number
  /** Milliseconds since the epoch. */
  atime: number
  mtime: number
  ctime: number
}

/** A name's inode and attributes, and how long (seconds) the kernel may keep each. */
export interface Entry {
  ino: number
  attr: Attr
  attrTimeout: number
  entryTimeout: number
}

export interface OpenReply {
  /**
   * The handle; even numbers only: the addon keeps the lowest bit (set for a read-only one), and
   * later requests give the handle back with it.
   */
  fh: number
  /** Nothing to commit at close: the kernel sends no FLUSH, and RELEASE is answered at once. */
  readOnly?: boolean
  /** Reads and writes bypass the page cache (content made afresh for each open). */
  directIo?: boolean
  /** The page cache from an earlier open stays valid. */
  keepCache?: boolean
}

export interface Dirent {
  name: string
  /** The offset of the entry after this one. */
  off: number
  ino: number
  mode: number
  /** The entry the kernel instantiates, for a READDIRPLUS (a lookup it counts). */
  entry?: Entry
}

/** FUSE_SET_ATTR_* bits of setattr's `toSet`. */
export const SET_ATTR_SIZE = 1 << 3

/** The handlers a mount calls; a missing one answers ENOSYS. `req` is undefined for a RELEASE answered already. */
export interface LowLevelHandlers {
  init?(): void
  lookup?(req: Request, parent: number, name: string): void
  forget?(ino: number, nlookup: number): void
  getattr?(req: Request, ino: number, fh: number | undefined): void
  setattr?(req: Request, ino: number, toSet: number, size: number, fh: number | undefined): void
  mkdir?(req: Request, parent: number, name: string, mode: number): void
  unlink?(req: Request, parent: number, name: string): void
  rmdir?(req: Request, parent: number, name: string): void
  rename?(req: Request, parent: number, name: string, newParent: number, newName: string, flags: number): void
  open?(req: Request, ino: number, flags: number): void
  create?(req: Request, parent: number, name: string, mode: number, flags: number): void
  read?(req: Request, ino: number, size: number, off: number, fh: number): void
  write?(req: Request, ino: number, data: Buffer, off: number, fh: number): void
  flush?(req: Request, ino: number, fh: number): void
  release?(req: Request | undefined, ino: number, fh: number): void
  fsync?(req: Request, ino: number, datasync: number, fh: number): void
  opendir?(req: Request, ino: number): void
  /** A listing: READDIRPLUS, or a plain READDIR when the kernel refused READDIRPLUS at INIT (see replyDirents). */
  readdirplus?(req: Request, ino: number, size: number, off: number, fh: number): void
  releasedir?(req: undefined, ino: number, fh: number): void
  /** The kernel ended the mount (fusermount -u, umount -l): the session is over. */
  unmounted?(): void
}

export type Session = { readonly __session: unique symbol }

export interface FuseLowLevel {
  /** Mounts at `mountpoint` with libfuse `options` ('fsname=secretfs,subtype=secretfs,...'). */
  mount(mountpoint: string, options: string, handlers: LowLevelHandlers): Session
  /** Stops serving, unmounts if still mounted, and frees the session. */
  unmount(session: Session): void
  /** Each reply returns libfuse's result (0, or -errno), or -EALREADY for a request answered before. */
  replyErr(req: Request, errno: number): number
  replyEntry(req: Request, entry: Entry): number
  replyAttr(req: Request, attr: Attr, timeout: number): number
  replyOpen(req: Request, open: OpenReply): number
  replyCreate(req: Request, entry: Entry, open: OpenReply): number
  replyBuf(req: Request, data: Buffer): number
  replyWrite(req: Request, count: number): number
  /**
   * Answers a listing with as many of `entries` as fit in `size` bytes (READDIRPLUS entries, or
   * plain ones when the kernel asked for a plain READDIR). Returns how many of the first entries
   * the kernel got with their lookups (0 for a plain READDIR, or an answer that failed).
   */
  replyDirents(req: Request, entries: Dirent[], size: number): number
  /**
   * Drops what the kernel caches of a name in `parent` (with `name`) or of an inode, off the JS
   * thread; `done` always comes (-ENOTCONN after an unmount). With `content` (for an inode; copied
   * at the call, and the copy zeroed when done), the inode's page cache then holds it as the
   * file's content.
   */
  invalidate(
    session: Session,
    ino: number,
    name: string | undefined,
    done: (result: number) => void,
    content?: Buffer,
  ): void
  /**
   * Asks the kernel for what its page cache holds of `ino`, from offset 0 and up to `size` bytes
   * (and its max_write), in order with the invalidations: `done` gets the pages it had, up to the
   * first it did not, or a negative errno (an inode it no longer has; -ENOTCONN after an unmount).
   * A page being read in at that moment may come back unfilled: check what comes back.
   */
  retrieve(session: Session, ino: number, size: number, done: (result: number, content?: Buffer) => void): void
  /**
   * From now on the addon answers each read-only open of `ino` (without O_TRUNC) by itself, with
   * the handle `fh` (as an OpenReply's, read-only), the page cache kept: for content the kernel
   * holds as it is. It also answers the RELEASE of each handle numbered `fh`, those JS gave too: JS
   * hears of neither until `revoke`. False if `ino` has a grant already, or the session ended.
   */
  grant(session: Session, ino: number, fh: number): boolean
  /**
   * From now on the addon also answers GETATTRs of `ino` (of the inode, or through a handle of the
   * grant) with `attr`, kept `timeout` seconds, until the grant numbered `fh` ends: the attributes
   * of the content granted. False if `ino` has no grant numbered `fh`.
   */
  grantAttributes(session: Session, ino: number, fh: number, attr: Attr, timeout: number): boolean
  /**
   * Ends the grant of `ino`: the handles numbered as it the addon opened, less those it released
   * (below 0 if some it released were JS's); undefined if `ino` had no grant.
   */
  revoke(session: Session, ino: number): number | undefined
  /** Who made the request. */
  context(req: Request): { uid: number; gid: number; pid: number } | undefined
}

export const FUSE_ADDON_PATH = path.join('build', 'Release', 'secretfs_fuse.node')

let loaded: FuseLowLevel | undefined

/** The addon; throws the loader's error when libfuse 3 (libfuse3.so.3) is missing. */
export function loadFuseLowLevel(): FuseLowLevel {
  return (loaded ??= createRequire(import.meta.url)(path.join(packageRoot(), FUSE_ADDON_PATH)) as FuseLowLevel)
}
