// Mounts a SecretFs with secretfs's own binding on libfuse 3's low-level API (src/native/
// fuse-lowlevel.c): the kernel's inode requests are turned into the path requests SecretFs
// answers, through the inode table. Directory listings are READDIRPLUS, so `ls -l` needs no
// lookup per name; a read-only handle is closed without waking JS for a FLUSH. The kernel keeps
// names and attributes for a second (a stored secret's for ten, and the name of a file created in a
// generic mount from its creation) and a stored secret's content in its page cache (keep_cache);
// kernel-cache.ts drops what each change makes stale. A secret the kernel has cached, unchanged,
// and that no handle holds, is opened without reading it (a lazy open), and read only if the
// kernel asks: its read-only opens, their releases and the requests for its attributes are
// answered by the addon itself, with one handle number, JS not woken, until the secret changes, is
// read, or is opened otherwise (a grant). Should another process replace or delete the secret
// while such handles are open, what the kernel holds of it is taken back for them. Generated
// content is direct_io: each open makes it once, and nothing of it is cached.

import type { Stat } from 'fuse-native'
import { constants } from 'node:os'
import { exists, invalid, notFound, sealed } from '../errors.js'
import {
  SET_ATTR_SIZE,
  type Attr,
  type Dirent,
  type Entry,
  type FuseLowLevel,
  type LowLevelHandlers,
  type Request,
  type Session,
} from '../native/fuse-lowlevel.js'
import type { Logger } from '../log.js'
import { staleName } from './errno.js'
import { drainedMount, type FsMount } from './fuse-mount.js'
import { InodeTable, ROOT_INO } from './inode-table.js'
import { CACHE_TIMEOUT, KernelCache, MAX_STORED, STABLE_CACHE_TIMEOUT } from './kernel-cache.js'
import type { SecretFs } from './secret-fs.js'

const S_IFDIR = 0o040000
const O_ACCMODE = 3
const O_RDONLY = 0
const O_TRUNC = 0o1000

/** Lazy handles are numbered from here, above any number SecretFs gives. */
const LAZY_BASE = 2 ** 40

/** renameat2 flags. */
const RENAME_NOREPLACE = 1
const RENAME_EXCHANGE = 2

/** Bytes the kernel gives one READDIRPLUS entry at least (fuse_direntplus and a short name). */
const DIRENTPLUS_BYTES = 160

const ms = (t: number | Date) => (typeof t === 'number' ? t : t.getTime())

const attrOf = (ino: number, st: Stat): Attr => ({
  ino,
  mode: st.mode,
  nlink: st.nlink ?? 1,
  uid: st.uid,
  gid: st.gid,
  size: st.size,
  atime: ms(st.atime),
  mtime: ms(st.mtime),
  ctime: ms(st.ctime),
})

/**
 * A name's entry; a stored secret's (`stable`) is kept longer, its every change being invalidated.
 * A file being created has a `stableName` alone: its attributes change as it is written.
 */
const entryOf = (ino: number, st: Stat, stable = false, stableName = stable): Entry => {
  const timeout = (long: boolean) => (long ? STABLE_CACHE_TIMEOUT : CACHE_TIMEOUT)
  return { ino, attr: attrOf(ino, st), attrTimeout: timeout(stable), entryTimeout: timeout(stableName) }
}

/**
 * A lazy open: the handles of a secret opened from the kernel's cache, one number for them all
 * (given by JS, or by the addon under the grant).
 */
interface LazyOpen {
  ino: number
  /** SecretFs's handle, opened at the first read the kernel sends. */
  fd?: Promise<number>
  sealed?: boolean
  /** The digest of what the kernel held when it was opened (KernelCache.digest). */
  digest: Buffer
  /** Handles JS gave the kernel. */
  given: number
  /**
   * Handles whose RELEASE JS is to hear of: known once the grant has ended (the addon answers the
   * opens and releases of handles under it).
   */
  opens?: number
  /** Of those, released. */
  released: number
}

/** A handle number as the addon carries it: the lowest bit is the addon's. */
const fhOf = (fd: number) => fd * 2
const fdOf = (fh: number) => Math.floor(fh / 2)

export async function mountLowLevel(
  fuse: FuseLowLevel,
  mountpoint: string,
  fs: SecretFs,
  log: Logger,
  options = 'fsname=secretfs,subtype=secretfs',
): Promise<FsMount> {
  const inodes = new InodeTable()
  /** Open directories: the listing read at opendir, served in chunks by offset. */
  const dirs = new Map<number, { path: string; names: string[] }>()
  let nextDir = 1
  /** Lazy opens, by handle number. A seal ends them, as it does every handle. */
  const lazy = new Map<number, LazyOpen>()
  /** The lazy open whose number the addon gives to the opens it answers, by inode (see grant). */
  const granted = new Map<number, number>()
  let nextLazy = LAZY_BASE
  const isLazy = (fh: number) => lazy.has(fdOf(fh))
  let session: Session | undefined
  let cache: KernelCache | undefined
  let stopFollowing = () => {}
  let ended = false
  /** Stops following the core and ends the session, once; false if it had ended already. */
  const end = (): boolean => {
    if (ended) return false
    ended = true
    stopFollowing()
    if (session) fuse.unmount(session)
    cache?.dispose()
    return true
  }

  const ok = (req: Request) => () => void fuse.replyErr(req, 0)
  /** The path of `ino`; an inode the kernel should no longer hold is ENOENT. */
  const pathOf = (ino: number): string => {
    const p = inodes.path(ino)
    if (p === undefined) throw notFound()
    return p
  }
  const childOf = (parent: number, name: string): string => {
    const p = inodes.child(parent, name)
    if (p === undefined) throw notFound()
    return p
  }
  /** Runs `work` through SecretFs's request runner, which turns what it throws into an errno. */
  const serve = <T>(req: Request, work: () => T | Promise<T>, answer: (v: T) => void) =>
    fs.serve(work, answer, (errno) => void fuse.replyErr(req, -errno))

  /** A name's entry: a lookup the kernel counts, so its inode is counted only once it has the answer's attributes. */
  const entry = async (path: string, stableName?: boolean): Promise<Entry> => {
    const found = await fs.lookup(path)
    return entryOf(inodes.ino(path), found.stat, found.stable, stableName ?? found.stable)
  }

  /** unlink or rmdir: the name is gone; its inode lives until the kernel forgets it. */
  const remove = (req: Request, parent: number, name: string, op: (path: string) => Promise<void>) =>
    serve(
      req,
      async () => {
        const path = childOf(parent, name)
        await op(path)
        inodes.removed(path)
      },
      ok(req),
    )
  /** Closes a handle no program holds (the kernel never got it, or was answered already). */
  const letGo = (fd: number) =>
    fs.serve(
      () => fs.release(fd),
      () => {},
      () => {},
    )
  /** Ends lazy open `h` once each handle the kernel was given of it is released. */
  const settle = (h: number, l: LazyOpen) => {
    if (l.opens === undefined || l.released < l.opens) return
    lazy.delete(h)
    void l.fd?.then(letGo, () => {})
  }
  /**
   * The addon answers no more opens of `ino` by itself (the secret changed, is being read, or is
   * opened otherwise); its lazy open ends when the handles it was given are released.
   */
  const revoke = (ino: number) => {
    const h = granted.get(ino)
    if (h === undefined || ended) return
    granted.delete(ino)
    const l = lazy.get(h)!
    l.opens = l.given + (fuse.revoke(session!, ino) ?? 0)
    settle(h, l)
  }
  /**
   * A lazy open of `ino`, granted to the addon, if the kernel holds its secret as it is and no
   * handle holds it (SecretFs.idle); `given`: 1 for the open JS answers with it, else 0.
   */
  const lazyOpen = (ino: number, given: number): number | undefined => {
    const path = inodes.path(ino)
    const digest = cache?.digest(ino)
    if (ended || granted.has(ino) || !digest || path === undefined || inodes.find(path) !== ino || !fs.idle(path))
      return undefined
    const h = nextLazy++
    const l: LazyOpen = { ino, digest, given, released: 0 }
    lazy.set(h, l)
    if (fuse.grant(session!, ino, fhOf(h))) {
      granted.set(ino, h)
      grantAttributes(ino, h, path)
    } else l.opens = given
    return h
  }
  /**
   * Gives the grant `h` of `ino` the attributes of the secret at `path`, so that the addon answers
   * its GETATTRs too (as after a write, when the kernel asks for the size before reading): if the
   * grant still lasts once they are read, they are the content's it was made for.
   */
  const grantAttributes = (ino: number, h: number, path: string) =>
    void fs.lookup(path).then(
      ({ stat, stable }) =>
        stable &&
        granted.get(ino) === h &&
        !ended &&
        fuse.grantAttributes(session!, ino, fhOf(h), attrOf(ino, stat), STABLE_CACHE_TIMEOUT),
      () => {},
    )
  /** The handle a lazy open's reads use, opened at the first. */
  const lazyRead = async (l: LazyOpen): Promise<number> => {
    if (l.sealed) throw sealed('secretfs was sealed while this file was open; open it again once unsealed')
    if (l.fd) return l.fd
    // Its inode's path, if the secret there is still the one opened (renames move it); one
    // replaced or deleted since is gone from the store, and from the kernel's cache too.
    const path = inodes.path(l.ino)
    if (path === undefined || inodes.find(path) !== l.ino) throw staleName()
    // The content is read: later opens are JS's, which sees this one hold the file.
    revoke(l.ino)
    return (l.fd = fs.open(path, O_RDONLY))
  }
  /**
   * Before the secret at `path` (a logical path; with `under`, everything beneath it too) is
   * known replaced or deleted by another process: each lazy open on it not yet read gets what
   * the kernel still holds of the secret it opened, taken back and checked against its digest, so
   * that it goes on reading that. If the kernel no longer has all of it, its reads fail (ESTALE).
   */
  const keepLazy = (path: string, under: boolean) => {
    const at = '/' + path
    const byIno = new Map<number, { path: string; digest: Buffer; handles: LazyOpen[] }>()
    for (const [h, l] of lazy) {
      if (l.fd || l.sealed) continue
      const p = inodes.path(l.ino)
      if (p === undefined || (p !== at && !(under && p.startsWith(at + '/')))) continue
      // No open joins it from here: what it keeps is the secret it opened. Released, it keeps nothing.
      revoke(l.ino)
      if (!lazy.has(h)) continue
      const group = byIno.get(l.ino) ?? { path: p, digest: l.digest, handles: [] }
      group.handles.push(l)
      byIno.set(l.ino, group)
    }
    for (const [ino, group] of byIno) {
      const content = new Promise<Buffer>((resolve, reject) =>
        fuse.retrieve(session!, ino, MAX_STORED, (result, data) => {
          if (result === 0 && data && cache!.holds(group.digest, data)) return resolve(data)
          data?.fill(0)
          reject(staleName())
        }),
      )
      for (const l of group.handles) {
        l.fd = content.then((data) => fs.keep(group.path, Buffer.from(data)))
        // Awaited by a read, if one comes; a failure nobody reads is no error.
        l.fd.catch(() => {})
      }
      void content.then(
        (data) => data.fill(0),
        () => {},
      )
    }
  }

  /** An entry the kernel did not get (the request was interrupted) is no lookup it holds. */
  const answered = (result: number, e: Entry) => {
    if (result !== 0) inodes.forget(e.ino, 1)
  }

  const handlers: LowLevelHandlers = {
    lookup: (req, parent, name) =>
      serve(
        req,
        async () => {
          // Missing is a new file's usual answer: no error is made for it.
          const path = childOf(parent, name)
          const found = await fs.find(path)
          return found && entryOf(inodes.ino(path), found.stat, found.stable)
        },
        (e) => (e ? answered(fuse.replyEntry(req, e), e) : void fuse.replyErr(req, constants.errno.ENOENT)),
      ),
    forget: (ino, n) => {
      inodes.forget(ino, n)
      if (inodes.path(ino) === undefined) cache?.forgotten(ino)
    },
    getattr: (req, ino, fh) =>
      serve(
        req,
        // fstat: what the handle holds, even once its name is gone.
        () =>
          fh !== undefined && !isLazy(fh)
            ? { stat: fs.handleAttributes(fdOf(fh)), stable: false }
            : fs.lookup(pathOf(ino)),
        ({ stat, stable }) =>
          void fuse.replyAttr(req, attrOf(ino, stat), stable ? STABLE_CACHE_TIMEOUT : CACHE_TIMEOUT),
      ),
    setattr: (req, ino, toSet, size, fh) =>
      serve(
        req,
        async () => {
          const path = pathOf(ino)
          // Mode, owner and times are fixed (as chmod, chown and utimens on the fuse-native mount).
          if (toSet & SET_ATTR_SIZE) {
            if (fh !== undefined && !isLazy(fh) && fs.writable(fdOf(fh))) fs.ftruncate(fdOf(fh), size)
            else await fs.truncate(path, size)
          }
          return fs.getattr(path)
        },
        (st) => void fuse.replyAttr(req, attrOf(ino, st), CACHE_TIMEOUT),
      ),
    mkdir: (req, parent, name) =>
      serve(
        req,
        async () => {
          const path = childOf(parent, name)
          await fs.mkdir(path)
          return entry(path)
        },
        (e) => answered(fuse.replyEntry(req, e), e),
      ),
    unlink: (req, parent, name) => remove(req, parent, name, (path) => fs.unlink(path)),
    rmdir: (req, parent, name) => remove(req, parent, name, (path) => fs.rmdir(path)),
    rename: (req, parent, name, newParent, newName, flags) =>
      serve(
        req,
        async () => {
          const from = childOf(parent, name)
          const to = childOf(newParent, newName)
          if (flags & RENAME_EXCHANGE) throw invalid('renameat2 RENAME_EXCHANGE is not supported')
          if (
            flags & RENAME_NOREPLACE &&
            (await fs.getattr(to).then(
              () => true,
              () => false,
            ))
          )
            throw exists()
          // The inode table follows the core's announcement of the move (see follow()).
          await fs.rename(from, to)
        },
        ok(req),
      ),
    open: (req, ino, flags) => {
      // The kernel holds the secret as it is: nothing to read unless the kernel asks.
      const h = (flags & (O_ACCMODE | O_TRUNC)) === O_RDONLY ? lazyOpen(ino, 1) : undefined
      if (h !== undefined) {
        if (fuse.replyOpen(req, { fh: fhOf(h), readOnly: true, keepCache: true }) === 0) return
        // The kernel did not get it (interrupted): one handle fewer to wait for.
        const l = lazy.get(h)!
        l.given--
        if (l.opens !== undefined) l.opens--
        return settle(h, l)
      }
      // Opened otherwise (to write, or while it is open): no more opens of it answered by the addon.
      revoke(ino)
      serve(
        req,
        () => {
          // An inode whose name was since removed or replaced (reopened through /proc/PID/fd) is
          // not the secret now at that name.
          const path = pathOf(ino)
          if (inodes.find(path) !== ino) throw staleName()
          return fs.open(path, flags)
        },
        (fd) => {
          const cached = fs.cacheable(fd) && !cache?.stale(ino)
          // What the kernel will hold, for its digest (KernelCache.holds).
          fs.withContent(fd, (c) => cache?.opened(ino, cached, cached && c.length <= MAX_STORED ? c : undefined))
          const reply = { fh: fhOf(fd), readOnly: !fs.writable(fd), directIo: !cached, keepCache: cached }
          if (fuse.replyOpen(req, reply) !== 0) letGo(fd)
        },
      )
    },
    create: (req, parent, name) =>
      serve(
        req,
        async () => {
          const path = childOf(parent, name)
          const { fd, stable } = await fs.create(path)
          return { fd, entry: await entry(path, stable) }
        },
        ({ fd, entry }) => {
          const result = fuse.replyCreate(req, entry, { fh: fhOf(fd), directIo: true })
          answered(result, entry)
          if (result !== 0) letGo(fd)
        },
      ),
    read: (req, _ino, size, off, fh) => {
      const buf = Buffer.allocUnsafe(size)
      const l = lazy.get(fdOf(fh))
      serve(
        req,
        // A lazy open reads the secret now: the kernel's copy was dropped.
        () => (l ? lazyRead(l).then((fd) => fs.read(fd, buf, size, off)) : fs.read(fdOf(fh), buf, size, off)),
        (n) => {
          fuse.replyBuf(req, buf.subarray(0, n))
          buf.fill(0, 0, n)
        },
      )
    },
    write: (req, _ino, data, off, fh) =>
      serve(
        req,
        () => fs.write(fdOf(fh), data, data.length, off),
        (n) => void fuse.replyWrite(req, n),
      ),
    flush: (req, _ino, fh) => serve(req, () => (isLazy(fh) ? undefined : fs.flush(fdOf(fh))), ok(req)),
    fsync: (req, _ino, _datasync, fh) => serve(req, () => (isLazy(fh) ? undefined : fs.commit(fdOf(fh))), ok(req)),
    release: (req, ino, fh) => {
      const l = lazy.get(fdOf(fh))
      if (l) {
        l.released++
        settle(fdOf(fh), l)
        return req && ok(req)()
      }
      // Once no handle holds it, the secret's next opens are the addon's, if the kernel holds it as it is.
      if (req)
        return serve(
          req,
          () => fs.release(fdOf(fh)),
          () => {
            ok(req)()
            lazyOpen(ino, 0)
          },
        )
      // A read-only handle, answered already by the addon: only let it go.
      letGo(fdOf(fh))
      lazyOpen(ino, 0)
    },
    opendir: (req, ino) =>
      serve(
        req,
        async () => {
          const path = pathOf(ino)
          const names = await fs.readdir(path)
          const dh = nextDir++
          dirs.set(dh, { path, names })
          return dh
        },
        (dh) => {
          if (fuse.replyOpen(req, { fh: fhOf(dh) }) !== 0) dirs.delete(dh)
        },
      ),
    readdirplus: (req, ino, size, off, fh) =>
      serve(
        req,
        async () => {
          const dir = dirs.get(fdOf(fh))
          if (!dir) throw invalid('no such directory handle')
          const names = dir.names.slice(off, off + Math.ceil(size / DIRENTPLUS_BYTES) + 1)
          const items = await Promise.all(
            names.map(async (name, i): Promise<Dirent | undefined> => {
              const next = off + i + 1
              if (name === '.' || name === '..')
                return { name, off: next, ino: name === '.' ? ino : ROOT_INO, mode: S_IFDIR }
              const path = dir.path === '/' ? `/${name}` : `${dir.path}/${name}`
              // A name gone since opendir is left out.
              const found = await fs.find(path).catch(() => undefined)
              if (!found) return undefined
              const child = inodes.ino(path, false)
              const entry = entryOf(child, found.stat, found.stable)
              return { name, off: next, ino: child, mode: found.stat.mode, entry }
            }),
          )
          return items.filter((d): d is Dirent => d !== undefined)
        },
        (items) => {
          const fitted = fuse.replyDirents(req, items, size)
          // The kernel holds a lookup of each entry that fitted; the others were never seen.
          items.forEach((d, i) => d.entry && (i < fitted ? inodes.counted(d.ino) : inodes.drop(d.ino)))
        },
      ),
    releasedir: (_req, _ino, fh) => void dirs.delete(fdOf(fh)),
    unmounted: () => {
      if (end()) log.warn('the filesystem was unmounted from outside the daemon')
    },
  }

  session = fuse.mount(mountpoint, options, handlers)
  const kernelCache = new KernelCache(fuse, session, inodes, {
    current: (ino) => void lazyOpen(ino, 0),
    dropped: revoke,
  })
  cache = kernelCache
  stopFollowing = fs.onChange((change, here) => {
    if (change.kind === 'sealed') for (const l of lazy.values()) l.sealed = true
    if (!here && lazy.size > 0) {
      if (change.kind === 'written') keepLazy(change.path, false)
      if (change.kind === 'removed' || change.kind === 'changed') keepLazy(change.path, true)
    }
    return kernelCache.follow(change, here)
  })
  return drainedMount(mountpoint, fs, () => void end())
}
