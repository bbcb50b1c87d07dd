// The FUSE handlers: thin adapters from kernel requests onto the Core. The root directory is the
// mount table; inside a mount, files are secrets. Writes are buffered per open file (see
// file-handle.ts) and committed on flush, fsync and release. Errors become errno values only in
// errno.ts.

import { constants } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import type { Operations, Stat } from 'fuse-native'
import type { Core } from '../core/core.js'
import { isDir, isKind, notDir, notFound, readOnly, unsupported } from '../errors.js'
import type { Logger } from '../log.js'
import { Attributes } from './attributes.js'
import { badHandle, staleName, toErrno } from './errno.js'
import { FileHandle } from './file-handle.js'
import { checkName, isProbeAtRoot, parentOf, parseFsPath } from './fs-paths.js'
import { HandleTable } from './handle-table.js'
import { HotLoop } from './hot-loop.js'
import { KernelCache } from './kernel-cache.js'

const { O_RDONLY, O_TRUNC, O_APPEND } = constants
const O_ACCMODE = 3 // not in node's constants
const EMPTY = new Uint8Array(0)
/** How long a reader waits for the release of a file emptied and closed (see open). */
const RELEASE_GRACE_MS = 100

export interface SecretFsOptions {
  core: Core
  log: Logger
  attributes?: Attributes
  /** Shared with the control API, which waits for what the kernel cached to lapse. */
  kernelCache?: KernelCache
}

export class SecretFs {
  readonly #core: Core
  readonly #log: Logger
  readonly #attrs: Attributes
  readonly #kernelCache: KernelCache
  readonly #handles = new HandleTable()
  readonly #inFlight = new Set<Promise<unknown>>()
  readonly #hot = new HotLoop()
  readonly #store = (path: string, value: Buffer): Promise<void> => this.#core.write(path, value)

  constructor(options: SecretFsOptions) {
    this.#core = options.core
    this.#log = options.log
    this.#attrs = options.attributes ?? new Attributes()
    this.#kernelCache = options.kernelCache ?? new KernelCache()
  }

  /** The handlers for fuse-native. Only what is listed here is implemented. */
  operations(): Operations {
    const done = (cb: (err: number) => void) => () => cb(0)
    return {
      getattr: (p, cb) =>
        this.#run(
          () => this.#kernelCache.attributes(parseFsPath(p).logical, () => this.getattr(p)),
          (st) => cb(0, st),
          cb,
        ),
      readdir: (p, cb) =>
        this.#run(
          () => this.readdir(p),
          (names) => cb(0, names),
          cb,
        ),
      open: (p, flags, cb) =>
        this.#run(
          () => this.open(p, flags),
          (fd) => cb(0, fd),
          cb,
        ),
      create: (p, _mode, cb) =>
        this.#run(
          () => this.create(p),
          (fd) => cb(0, fd),
          cb,
        ),
      read: (_p, fd, buf, len, pos, cb) => this.#run(() => this.#handle(fd).read(buf, len, pos), cb, cb),
      write: (_p, fd, buf, len, pos, cb) => this.#run(() => this.#writer(fd).write(buf, len, pos), cb, cb),
      flush: (_p, fd, cb) => this.#run(() => this.flush(fd), done(cb), cb),
      fsync: (_p, _datasync, fd, cb) => this.#run(() => this.commit(fd), done(cb), cb),
      release: (_p, fd, cb) => this.#run(() => this.release(fd), done(cb), cb),
      truncate: (p, size, cb) => this.#run(() => this.truncate(p, size), done(cb), cb),
      ftruncate: (_p, fd, size, cb) => this.#run(() => this.#writer(fd).truncate(size), done(cb), cb),
      unlink: (p, cb) => this.#run(() => this.unlink(p), done(cb), cb),
      mkdir: (p, _mode, cb) => this.#run(() => this.mkdir(p), done(cb), cb),
      rmdir: (p, cb) => this.#run(() => this.rmdir(p), done(cb), cb),
      rename: (a, b, cb) => this.#run(() => this.rename(a, b), done(cb), cb),
      // Documented no-ops, so that cp -p, mv between mounts, rsync and editors succeed: a
      // secret's mode and owner are fixed (0600, the daemon's user) and its times are its own.
      chmod: (p, _mode, cb) => this.#run(() => this.getattr(p), done(cb), cb),
      chown: (p, _uid, _gid, cb) => this.#run(() => this.getattr(p), done(cb), cb),
      utimens: (p, _atime, _mtime, cb) => this.#run(() => this.getattr(p), done(cb), cb),
      // Refused, rather than left to libfuse's ENOSYS, so that tools report "not permitted".
      symlink: (_a, _b, cb) => this.#run(() => refuse('symbolic links are not supported'), cb, cb),
      link: (_a, _b, cb) => this.#run(() => refuse('hard links are not supported'), cb, cb),
      mknod: (_p, _mode, _dev, cb) => this.#run(() => refuse('only regular files are supported'), cb, cb),
    }
  }

  // ---- requests ----

  async getattr(fusePath: string): Promise<Stat> {
    const p = parseFsPath(fusePath)
    if (p.logical === '') return this.#attrs.root()
    if (p.atTop && isProbeAtRoot(p.mount)) throw notFound()
    const pending = p.atTop ? undefined : this.#handles.pending(p.logical)
    if (pending) return this.#attrs.pending(pending.size)
    const info = await this.#core.stat(p.logical)
    if (!info) throw notFound()
    return this.#attrs.of(info)
  }

  async readdir(fusePath: string): Promise<string[]> {
    const names = await this.#core.list(parseFsPath(fusePath).logical)
    return ['.', '..', ...names.map((n) => (n.endsWith('/') ? n.slice(0, -1) : n))]
  }

  async open(fusePath: string, flags: number): Promise<number> {
    const p = parseFsPath(fusePath)
    if (p.logical === '' || p.atTop) throw isDir()
    // A writer's close may be committing right now; start from what it publishes. A file emptied
    // and closed (`: > f`) is committed by its release, which the kernel sends just after close
    // returns: give it a moment, so that `: > f; cat f` shows the empty file.
    for (const w of this.#handles.writersUnder(p.logical)) {
      if (w.path !== p.logical) continue
      if (w.awaitingRelease) await Promise.race([w.released, delay(RELEASE_GRACE_MS)])
      await w.settled()
    }
    if ((flags & O_ACCMODE) === O_RDONLY) {
      // One read per open: generated content is made here, once, and served from the handle.
      const value = await this.#core.read(p.logical).then(
        (r) => r.value,
        (e: unknown) => {
          if (!isKind(e, 'not-found')) throw e
          if (this.#handles.pending(p.logical)) return EMPTY // created, not yet committed
          throw staleName()
        },
      )
      return this.#handles.add(new FileHandle(p.logical, value, { writable: false }))
    }
    const pending = this.#handles.pending(p.logical)
    const info = await this.#core.stat(p.logical)
    if (!info && !pending) throw staleName()
    if (info?.kind === 'dir') throw isDir()
    if (info?.readOnly || info?.generated) throw readOnly('this file is read-only')
    // Copy on open: the writer edits its own copy, published whole when it is closed.
    const truncating = (flags & O_TRUNC) !== 0
    const content = truncating || !info ? EMPTY : (await this.#core.read(p.logical)).value
    return this.#handles.add(
      new FileHandle(p.logical, content, {
        writable: true,
        append: (flags & O_APPEND) !== 0,
        changed: truncating || !info,
      }),
    )
  }

  async create(fusePath: string): Promise<number> {
    const p = parseFsPath(fusePath)
    if (p.logical === '' || p.atTop) throw unsupported('only directories (mounts) can be made at the root')
    const { parent, name } = parentOf(p.logical)
    checkName(name)
    const dir = await this.#core.stat(parent)
    if (!dir) throw notFound()
    if (dir.kind !== 'dir') throw notDir()
    if (dir.readOnly) throw readOnly('this directory is read-only')
    // The new file exists in this handle until its first commit (getattr reports it from here).
    return this.#handles.add(new FileHandle(p.logical, EMPTY, { writable: true, changed: true }))
  }

  /**
   * A close of one descriptor (of possibly several: dup, fork). Commits what was written, so that
   * it is visible and durable when close returns; a handle only emptied or created at open is
   * committed at release instead (see FileHandle.touched). A reader's is answered at once.
   */
  flush(fd: number): Promise<void> | void {
    const handle = this.#handle(fd)
    if (!handle.writable) return
    if (handle.touched) return handle.commit(this.#store)
    handle.flushed()
  }

  async commit(fd: number): Promise<void> {
    const handle = this.#handle(fd)
    if (handle.writable) await handle.commit(this.#store)
  }

  /** The last close of an open file: a writer commits what is left; a reader is answered at once. */
  release(fd: number): Promise<void> | void {
    const handle = this.#handle(fd)
    const forget = () => {
      this.#handles.remove(fd)
      handle.dispose()
    }
    if (!handle.writable) return forget()
    return handle.commit(this.#store).finally(forget)
  }

  async truncate(fusePath: string, size: number): Promise<void> {
    const p = parseFsPath(fusePath)
    if (p.logical === '' || p.atTop) throw isDir()
    const writers = this.#handles.writersUnder(p.logical).filter((h) => h.path === p.logical)
    if (writers.length > 0) {
      for (const h of writers) {
        h.truncate(size)
        await h.commit(this.#store)
      }
      return
    }
    const { value } = await this.#core.read(p.logical)
    if (value.length === size) return
    const resized = Buffer.alloc(size)
    resized.set(value.subarray(0, Math.min(size, value.length)))
    try {
      await this.#core.write(p.logical, resized)
    } finally {
      resized.fill(0)
    }
  }

  async unlink(fusePath: string): Promise<void> {
    const p = parseFsPath(fusePath)
    if (p.logical === '' || p.atTop) throw unsupported('the root holds only mounts; rmdir unmounts one')
    await this.#core.delete(p.logical)
  }

  async mkdir(fusePath: string): Promise<void> {
    const p = parseFsPath(fusePath)
    if (!p.atTop) return this.#core.mkdir(p.logical)
    // The root is the mount table: a backend type's name mounts that type, any other a generic one.
    const type = this.#core.backendTypes.includes(p.mount) ? p.mount : 'generic'
    await this.#core.mount(p.mount, type)
  }

  async rmdir(fusePath: string): Promise<void> {
    const p = parseFsPath(fusePath)
    if (p.logical === '') throw unsupported()
    if (!p.atTop) return this.#core.rmdir(p.logical)
    // Unmounts even when not empty: leases revoked, data deleted (or EBUSY, and nothing changes).
    await this.#core.unmount(p.mount)
  }

  async rename(fromPath: string, toPath: string): Promise<void> {
    const a = parseFsPath(fromPath)
    const b = parseFsPath(toPath)
    if (a.logical === '' || b.logical === '') throw unsupported()
    if (a.atTop !== b.atTop) throw unsupported('a mount moves only to another name at the root')
    if (a.atTop) await this.#core.remount(a.mount, b.mount)
    else {
      // A file still in a writer's buffer must exist in the core before it can move.
      for (const h of this.#handles.writersUnder(a.logical)) await h.commit(this.#store)
      await this.#core.rename(a.logical, b.logical)
    }
    this.#handles.rename(a.logical, b.logical)
  }

  /** Waits for requests in progress, then commits every open file: for a clean shutdown. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#inFlight])
    for (const h of this.#handles.all())
      if (h.writable && h.dirty)
        await h.commit(this.#store).catch((e: unknown) => this.#log.error('a commit at shutdown failed', e))
  }

  // ---- plumbing ----

  #handle(fd: number): FileHandle {
    const handle = this.#handles.get(fd)
    if (!handle) throw badHandle()
    return handle
  }

  #writer(fd: number): FileHandle {
    const handle = this.#handle(fd)
    if (!handle.writable) throw badHandle()
    return handle
  }

  /**
   * Runs a request and answers the kernel: its value, or the errno of what it threw. Work done
   * from memory (reads, writes, a reader's close) is answered at once; a promise when it settles.
   */
  #run<T>(work: () => T | Promise<T>, answer: (value: T) => void, fail: (errno: number) => void): void {
    this.#hot.touch()
    let result: T | Promise<T>
    try {
      result = work()
    } catch (e) {
      return fail(this.#errno(e))
    }
    if (!(result instanceof Promise)) return answer(result)
    const request = result.then(answer, (e: unknown) => fail(this.#errno(e)))
    this.#inFlight.add(request)
    void request.finally(() => this.#inFlight.delete(request))
  }

  #errno(e: unknown): number {
    return toErrno(e, this.#log)
  }
}

function refuse(message: string): never {
  throw unsupported(message)
}
