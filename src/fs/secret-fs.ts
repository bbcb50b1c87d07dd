// The filesystem's semantics, by path, for both bindings (lowlevel-mount.ts, and fuse-native
// through operations()): thin adapters from kernel requests onto the Core. The root directory is
// the mount table; inside a mount, files are secrets. Every handle open on a path shares one
// content (open-file.ts), committed on close and fsync; the core's announcements keep open files
// true to the store (a rename moves them, a delete or replace lets them go, a seal zeroes them),
// and are passed on to the binding (onChange), which keeps the kernel's caches true. Errors
// become errno values only in errno.ts.

import { constants } from 'node:fs'
import type { Operations, Stat } from 'fuse-native'
import type { CoreChange } from '../core/core-change.js'
import type { Core } from '../core/core.js'
import type { Lease } from '../backends/backend.js'
import { leasedSecretJson } from '../format/lease.js'
import { isDir, isKind, notDir, notFound, readOnly, sealed, unsupported } from '../errors.js'
import type { Logger } from '../log.js'
import { Attributes } from './attributes.js'
import { badHandle, staleName, toErrno, undecodableName } from './errno.js'
import { FileHandle } from './file-handle.js'
import { checkName, isProbeAtRoot, parentOf, parseFsPath } from './fs-paths.js'
import { HandleTable, HIDDEN_NAME } from './handle-table.js'
import { HotLoop } from './hot-loop.js'
import { MemoryBudget } from './memory-budget.js'
import { OpenFile, type Store } from './open-file.js'

const { O_RDONLY, O_TRUNC, O_APPEND } = constants
const O_ACCMODE = 3 // not in node's constants

export interface SecretFsOptions {
  core: Core
  log: Logger
  attributes?: Attributes
  /** Limits (tests lower them): see handle-table.ts and memory-budget.ts. */
  maxOpenHandles?: number
  maxOpenBytes?: number
}

type ChangeListener = (change: CoreChange, here: boolean) => void | Promise<unknown>

/** A name's attributes, and whether they are a stored secret's (see SecretFs.lookup). */
export interface Found {
  stat: Stat
  stable: boolean
}

export class SecretFs {
  readonly #core: Core
  readonly #log: Logger
  readonly #attrs: Attributes
  readonly #handles: HandleTable
  readonly #budget: MemoryBudget
  readonly #inFlight = new Set<Promise<unknown>>()
  /** What onChange was given: told also of a created file gone without ever being stored. */
  readonly #listeners = new Set<ChangeListener>()
  /** Counts seals: an open whose read began before one must not hand out what it read. */
  #seals = 0
  readonly #store: Store = async (path, value, source) => {
    try {
      await this.#core.write(path, value, source)
    } catch (e) {
      // A program sees only EINVAL at close; the reason (a backend's message, which names fields,
      // never values) goes to the log.
      if (isKind(e, 'invalid')) this.#log.warn(`a write was refused: ${e.message}`)
      throw e
    }
    this.#handles.committed(path)
  }

  constructor(options: SecretFsOptions) {
    this.#core = options.core
    this.#log = options.log
    this.#attrs = options.attributes ?? new Attributes()
    this.#handles = new HandleTable(options.maxOpenHandles)
    this.#budget = new MemoryBudget(options.maxOpenBytes)
    options.core.onChange((change) => this.#changed(change))
  }

  /** The handlers for fuse-native. Only what is listed here is implemented. */
  operations(): Operations {
    const done = (cb: (err: number) => void) => () => cb(0)
    // fuse-native wakes the JS thread for each request; a loop kept polling spares that wake-up.
    const hot = new HotLoop()
    const serve: SecretFs['serve'] = (work, answer, fail) => {
      hot.touch()
      this.serve(work, answer, fail)
    }
    return this.#decodedOnly({
      getattr: (p, cb) =>
        serve(
          () => this.getattr(p),
          (st) => cb(0, st),
          cb,
        ),
      readdir: (p, cb) =>
        serve(
          () => this.readdir(p),
          (names) => cb(0, names),
          cb,
        ),
      open: (p, flags, cb) =>
        serve(
          () => this.open(p, flags),
          (fd) => cb(0, fd),
          cb,
        ),
      create: (p, _mode, cb) =>
        serve(
          () => this.create(p),
          ({ fd }) => cb(0, fd),
          cb,
        ),
      read: (_p, fd, buf, len, pos, cb) => serve(() => this.read(fd, buf, len, pos), cb, cb),
      write: (_p, fd, buf, len, pos, cb) => serve(() => this.write(fd, buf, len, pos), cb, cb),
      flush: (_p, fd, cb) => serve(() => this.flush(fd), done(cb), cb),
      fsync: (_p, _datasync, fd, cb) => serve(() => this.commit(fd), done(cb), cb),
      release: (_p, fd, cb) => serve(() => this.release(fd), done(cb), cb),
      truncate: (p, size, cb) => serve(() => this.truncate(p, size), done(cb), cb),
      ftruncate: (_p, fd, size, cb) => serve(() => this.ftruncate(fd, size), done(cb), cb),
      unlink: (p, cb) => serve(() => this.unlink(p), done(cb), cb),
      mkdir: (p, _mode, cb) => serve(() => this.mkdir(p), done(cb), cb),
      rmdir: (p, cb) => serve(() => this.rmdir(p), done(cb), cb),
      rename: (a, b, cb) => serve(() => this.rename(a, b), done(cb), cb),
      // Documented no-ops, so that cp -p, mv between mounts, rsync and editors succeed: a
      // secret's mode and owner are fixed (0600, the daemon's user) and its times are its own.
      chmod: (p, _mode, cb) => serve(() => this.getattr(p), done(cb), cb),
      chown: (p, _uid, _gid, cb) => serve(() => this.getattr(p), done(cb), cb),
      utimens: (p, _atime, _mtime, cb) => serve(() => this.getattr(p), done(cb), cb),
      // Refused, rather than left to libfuse's ENOSYS, so that tools report "not permitted".
      symlink: (_a, _b, cb) => serve(() => refuse('symbolic links are not supported'), cb, cb),
      link: (_a, _b, cb) => serve(() => refuse('hard links are not supported'), cb, cb),
      mknod: (_p, _mode, _dev, cb) => serve(() => refuse('only regular files are supported'), cb, cb),
    })
  }

  /**
   * `ops` for paths fuse-native decoded whole: it gives JS each path as UTF-8, with U+FFFD for
   * what could not be decoded, so that such a name would stand for every name that differs from it
   * only there. A path with U+FFFD is refused (EILSEQ). (The low-level binding refuses a name that
   * is not UTF-8 before it is decoded, and takes U+FFFD as the character it is.)
   */
  #decodedOnly(ops: Operations): Operations {
    const guarded: Record<string, unknown> = {}
    for (const [name, op] of Object.entries(ops) as [string, (...args: unknown[]) => void][]) {
      const paths = name === 'init' ? 0 : name === 'rename' || name === 'link' ? 2 : 1
      guarded[name] = (...args: unknown[]) => {
        let undecoded = false
        for (let i = 0; i < paths; i++) undecoded ||= (args[i] as string).includes('\uFFFD')
        if (!undecoded) return op(...args)
        const cb = args[args.length - 1] as (errno: number) => void
        this.serve(
          () => {
            throw undecodableName()
          },
          cb,
          cb,
        )
      }
    }
    return guarded as Operations
  }

  // ---- requests ----

  async getattr(fusePath: string): Promise<Stat> {
    return (await this.lookup(fusePath)).stat
  }

  /**
   * The attributes of `fusePath`, and whether they are a stored secret's, which change only
   * through the core (every change is announced: the kernel may keep them longer).
   */
  async lookup(fusePath: string): Promise<Found> {
    const found = await this.find(fusePath)
    if (!found) throw notFound()
    return found
  }

  /** lookup, for a name that may well be missing (a new file's): undefined then, not an error. */
  async find(fusePath: string): Promise<Found | undefined> {
    const p = parseFsPath(fusePath)
    if (p.logical === '') return { stat: this.#attrs.root(), stable: false }
    if (p.atTop && isProbeAtRoot(p.mount)) return undefined
    const open = p.atTop ? undefined : this.#handles.file(p.logical)
    if (open) return { stat: this.#attrs.open(open.size, open.modified), stable: false }
    const info = await this.#core.stat(p.logical)
    if (!info) return undefined
    return { stat: this.#attrs.of(info), stable: info.cacheable === true && !info.generated }
  }

  async readdir(fusePath: string): Promise<string[]> {
    const names = await this.#core.list(parseFsPath(fusePath).logical)
    return ['.', '..', ...names.map((n) => (n.endsWith('/') ? n.slice(0, -1) : n))]
  }

  async open(fusePath: string, flags: number): Promise<number> {
    const p = parseFsPath(fusePath)
    if (p.logical === '' || p.atTop) throw isDir()
    const writable = (flags & O_ACCMODE) !== O_RDONLY
    const file = this.#handles.file(p.logical) ?? (await this.#load(p.logical, writable))
    if (writable && file.readOnly) throw readOnly('this file is read-only')
    const fd = this.#attach(new FileHandle(file, { writable, append: (flags & O_APPEND) !== 0 }))
    // Emptied for every handle open on it, as O_TRUNC does on a local file.
    if (writable && (flags & O_TRUNC) !== 0) file.truncate(0)
    return fd
  }

  /** A handle number for `handle`; a file no handle holds is let go if the table is full. */
  #attach(handle: FileHandle): number {
    try {
      return this.#handles.add(handle)
    } catch (e) {
      if (handle.file.handles === 0) {
        this.#handles.unregister(handle.file)
        handle.file.dispose()
      }
      throw e
    }
  }

  /**
   * The file at `path`, read from the core and shared under its path; generated content (made
   * afresh by each read) is a file of this open's own.
   */
  async #load(path: string, writable: boolean): Promise<OpenFile> {
    const seals = this.#seals
    const loaded = await this.#handles.load(
      path,
      async () => {
        const result = await this.#core.read(path).catch((e: unknown) => {
          // The kernel opened a name it had cached; the core no longer has it.
          throw isKind(e, 'not-found') ? staleName() : e
        })
        if (writable && (result.readOnly || result.generated)) {
          result.value.fill(0)
          throw readOnly('this file is read-only')
        }
        const content = result.lease
          ? leased(result.value, result.lease)
          : Buffer.from(result.value.buffer, result.value.byteOffset, result.value.length)
        return new OpenFile(path, content, this.#budget, {
          shared: !result.generated,
          readOnly: result.readOnly === true || result.generated === true,
          cacheable: result.cacheable === true && !result.generated,
          created: result.created,
          modified: result.modified,
        })
      },
      (file) => file.dispose(),
    )
    if (this.#seals !== seals) {
      loaded.dispose()
      throw sealed()
    }
    if (!loaded.shared) return loaded
    // Another open of the path may have registered its file while this one read.
    const current = this.#handles.file(path)
    if (current) {
      loaded.dispose()
      return current
    }
    this.#handles.register(loaded)
    return loaded
  }

  /**
   * Creates the file at `fusePath` (stored at its first commit) and opens it for writing. `stable`:
   * once stored it is a secret whose name changes only through the core, so the kernel may keep
   * the name long; one that is gone without ever being stored is announced removed.
   */
  async create(fusePath: string): Promise<{ fd: number; stable: boolean }> {
    const p = parseFsPath(fusePath)
    if (p.logical === '' || p.atTop) throw unsupported('only directories (mounts) can be made at the root')
    const { parent, name } = parentOf(p.logical)
    checkName(name)
    const open = this.#handles.file(p.logical)
    if (open) return { fd: this.#attach(new FileHandle(open, { writable: true })), stable: false }
    const dir = await this.#core.stat(parent)
    if (!dir) throw notFound()
    if (dir.kind !== 'dir') throw notDir()
    if (dir.readOnly) throw readOnly('this directory is read-only')
    // The new file exists here until its first commit (getattr reports it from here).
    let file = this.#handles.file(p.logical) // made by another create while this one asked
    if (!file) {
      const now = new Date()
      file = new OpenFile(p.logical, Buffer.alloc(0), this.#budget, {
        shared: true,
        created: now,
        modified: now,
        unsaved: true,
      })
      this.#handles.register(file)
    }
    return { fd: this.#attach(new FileHandle(file, { writable: true })), stable: dir.newFilesCacheable === true }
  }

  /**
   * A read-only handle on `content` (taken over, zeroed when done): what the kernel held cached of
   * the secret at `path` when another process replaced or deleted it, for the programs that had
   * it open, which keep reading what they opened, as with every other handle.
   */
  keep(path: string, content: Buffer): number {
    const now = new Date()
    const file = new OpenFile(parseFsPath(path).logical, content, this.#budget, {
      shared: false,
      readOnly: true,
      created: now,
      modified: now,
    })
    file.orphaned = true
    return this.#attach(new FileHandle(file, { writable: false }))
  }

  /** `f` of the content the handle `fd` reads now: a view of it, not to be kept past `f`. */
  withContent<T>(fd: number, f: (content: Buffer) => T): T {
    return f(this.#handle(fd).file.view())
  }

  /** Reads up to `len` bytes at `pos` of the handle `fd` into `buf`; returns how many. */
  read(fd: number, buf: Buffer, len: number, pos: number): number {
    return this.#handle(fd).file.read(buf, len, pos)
  }

  /** Writes `len` bytes of `buf` at `pos` (the end, for O_APPEND) of the handle `fd`, then zeroes them. */
  write(fd: number, buf: Buffer, len: number, pos: number): number {
    try {
      const h = this.#writer(fd)
      return h.file.write(buf, len, pos, h.append)
    } finally {
      // The binding's receive buffer: the plaintext now lives only in the open file.
      buf.fill(0, 0, len)
    }
  }

  ftruncate(fd: number, size: number): void {
    this.#writer(fd).file.truncate(size)
  }

  /** The attributes of what the handle `fd` holds (fstat), even once its name is gone. */
  handleAttributes(fd: number): Stat {
    const { file } = this.#handle(fd)
    return this.#attrs.open(file.size, file.modified)
  }

  /** Whether the handle `fd` was opened for writing. */
  writable(fd: number): boolean {
    return this.#handle(fd).writable
  }

  /**
   * Whether what the handle `fd` reads may come from the kernel's page cache of its file, kept
   * from an earlier open: a stored secret (ReadResult.cacheable) that nobody is writing. Generated
   * content (made afresh for each open) never may, nor a writer's handle.
   */
  cacheable(fd: number): boolean {
    const { file, writable } = this.#handle(fd)
    return (
      file.cacheable && file.shared && file.stored && !writable && file.writers === 0 && !file.dirty && !file.orphaned
    )
  }

  /**
   * Whether a read-only open of the stored secret at `fusePath` may be answered without reading
   * it: the store is unsealed and no handle holds the path (so nobody is writing it). The binding
   * knows whether the kernel's cached copy is current; the content is read at the first read.
   */
  idle(fusePath: string): boolean {
    return !this.#core.sealed && !this.#handles.file(parseFsPath(fusePath).logical)
  }

  /**
   * Calls `listener` after each change the core announces, once open files have followed it.
   * `here` is true for content written through this filesystem (the kernel saw those bytes go by).
   */
  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener)
    const stop = this.#core.onChange((change) =>
      listener(change, change.kind === 'written' && (change.source === this || change.source instanceof OpenFile)),
    )
    return () => {
      this.#listeners.delete(listener)
      stop()
    }
  }

  /**
   * A close of one descriptor (of possibly several: dup, fork). A handle that wrote commits the
   * file, so that the change is visible and durable when close returns (see FileHandle.wrote).
   */
  flush(fd: number): Promise<void> | void {
    const handle = this.#handle(fd)
    if (handle.writable && handle.wrote) return handle.file.commit(this.#store)
  }

  async commit(fd: number): Promise<void> {
    const handle = this.#handle(fd)
    if (handle.writable) await handle.file.commit(this.#store)
  }

  /**
   * The last close of a handle. When no handle is left on the file, what is unsaved is committed
   * and the content zeroed; a file that a new open joined meanwhile stays.
   */
  release(fd: number): Promise<void> | void {
    const handle = this.#handles.remove(fd)
    if (!handle) throw badHandle()
    const file = handle.file
    if (file.handles > 0) return
    const forget = () => {
      if (file.handles > 0) return
      this.#handles.unregister(file)
      file.dispose()
      // Created here and never stored (its commit failed): the name is gone, as if removed.
      if (file.shared && !file.stored && !file.orphaned) this.#unstored(file.path)
    }
    if (!file.shared || !file.dirty || file.orphaned) return forget()
    return file.commit(this.#store).finally(forget)
  }

  async truncate(fusePath: string, size: number): Promise<void> {
    const p = parseFsPath(fusePath)
    if (p.logical === '' || p.atTop) throw isDir()
    const open = this.#handles.file(p.logical)
    if (open) {
      open.truncate(size)
      return open.commit(this.#store)
    }
    const { value, readOnly: locked, generated } = await this.#core.read(p.logical)
    try {
      if (locked || generated) throw readOnly('this file is read-only')
      if (value.length === size) return
      const resized = Buffer.alloc(size)
      resized.set(value.subarray(0, Math.min(size, value.length)))
      try {
        await this.#core.write(p.logical, resized, this)
      } finally {
        resized.fill(0)
      }
    } finally {
      value.fill(0)
    }
  }

  async unlink(fusePath: string): Promise<void> {
    const p = parseFsPath(fusePath)
    if (p.logical === '' || p.atTop) throw unsupported('the root holds only mounts; rmdir unmounts one')
    // The last close of a file unlinked while open: it was deleted from the store at the unlink.
    if (HIDDEN_NAME.test(parentOf(p.logical).name) && this.#handles.unhide(p.logical)) return
    await this.#deleteSecret(p.logical)
  }

  /**
   * Deletes the secret at `path` for an unlink. A file created and never committed is only here
   * (the kernel may unlink it while open): its handles keep their content, and nothing of it is
   * ever stored.
   */
  async #deleteSecret(path: string): Promise<void> {
    const open = this.#handles.file(path)
    if (open && !open.stored) {
      this.#handles.orphan(path)
      await open.settled()
      if (!open.stored) return
    }
    await this.#core.delete(path)
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
    if (a.atTop) {
      await this.#core.remount(a.mount, b.mount)
      return
    }
    if (HIDDEN_NAME.test(parentOf(b.logical).name)) {
      // libfuse 2 unlinks an open file by renaming it to a hidden name, and unlinks that at the
      // last close. Here the secret is deleted now, as on a local filesystem: its open handles
      // keep their content, nothing more is stored, and no hidden name ever reaches the store.
      const open = this.#handles.file(a.logical)
      await this.#deleteSecret(a.logical)
      this.#handles.hide(b.logical, open)
      return
    }
    // A file created and not yet committed must exist in the core before it can move.
    for (const f of this.#handles.filesUnder(a.logical)) await f.commit(this.#store)
    await this.#core.rename(a.logical, b.logical)
  }

  /** Waits for requests in progress, then commits every open file: for a clean shutdown. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#inFlight])
    for (const f of this.#handles.filesUnder(''))
      if (f.dirty) await f.commit(this.#store).catch((e: unknown) => this.#log.error('a commit at shutdown failed', e))
  }

  /** Keeps open files true to the store after a change made here or through the control API. */
  #changed(change: CoreChange): void {
    switch (change.kind) {
      case 'written':
        // Replaced from elsewhere (as `mv new f` would): programs holding it keep what they have.
        if (this.#handles.file(change.path) !== change.source) this.#handles.orphan(change.path)
        return
      case 'removed':
      case 'changed':
        return this.#handles.orphanUnder(change.path)
      case 'moved':
        return this.#handles.move(change.from, change.to)
      case 'sealed':
        this.#seals++
        for (const f of this.#handles.allFiles()) f.kill()
        return
    }
  }

  // ---- plumbing ----

  #unstored(path: string): void {
    for (const listener of this.#listeners)
      void Promise.resolve(listener({ kind: 'removed', path }, true)).catch((e: unknown) =>
        this.#log.error('a change listener failed', e),
      )
  }

  #handle(fd: number): FileHandle {
    const handle = this.#handles.get(fd)
    if (!handle) throw badHandle()
    return handle
  }

  #writer(fd: number): FileHandle {
    const handle = this.#handle(fd)
    if (!handle.writable) throw badHandle()
    handle.wrote = true
    return handle
  }

  /**
   * Runs a request and answers the kernel: its value, or the errno of what it threw. Work done
   * from memory (reads, writes, a reader's close) is answered at once; a promise when it settles.
   * Both bindings' adapters answer through it, so that drain() waits for every request.
   */
  serve<T>(work: () => T | Promise<T>, answer: (value: T) => void, fail: (errno: number) => void): void {
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

/** A leased secret's file: its fields and its lease, as one JSON document; the fields are zeroed. */
function leased(fields: Uint8Array, lease: Lease): Buffer {
  try {
    return leasedSecretJson(fields, lease)
  } finally {
    fields.fill(0)
  }
}

function refuse(message: string): never {
  throw unsupported(message)
}
