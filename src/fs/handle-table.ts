// The filesystem's open files: handles by number, and the one shared OpenFile of each path, which
// follows renames and is let go (orphaned) when its secret is deleted or replaced. Also the names
// libfuse gives open files that are unlinked (.fuse_hiddenXXXXXXXXXXXXXXXX), which live here only.

import { FsError } from './errno.js'
import type { FileHandle } from './file-handle.js'
import type { OpenFile } from './open-file.js'

/** Open handles at once; one more is refused with ENFILE. */
export const MAX_OPEN_HANDLES = 16_384

/** The name libfuse 2 renames an open file to when it is unlinked (see SecretFs.rename). */
export const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/

/** `path` is `dir` or beneath it ('' holds everything). */
const within = (path: string, dir: string): boolean => dir === '' || path === dir || path.startsWith(dir + '/')

export class HandleTable {
  readonly #maxHandles: number
  readonly #byFd = new Map<number, FileHandle>()
  readonly #byPath = new Map<string, OpenFile>()
  /** Unlinked open files, by the hidden name libfuse gave them (none: not a file of ours). */
  readonly #hidden = new Map<string, OpenFile | undefined>()
  /** Reads from the core for an open, by path: each learns whether the path changed meanwhile. */
  readonly #loads = new Map<string, Set<{ changed: boolean }>>()
  #next = 1 // fuse-native takes 0 as "no handle"

  constructor(maxHandles = MAX_OPEN_HANDLES) {
    this.#maxHandles = maxHandles
  }

  add(handle: FileHandle): number {
    if (this.#byFd.size >= this.#maxHandles)
      throw new FsError('ENFILE', `the daemon has ${this.#maxHandles} files open, as many as it allows`)
    while (this.#byFd.has(this.#next) || this.#next === 0) this.#next = (this.#next + 1) >>> 0
    const fd = this.#next
    this.#next = (this.#next + 1) >>> 0
    this.#byFd.set(fd, handle)
    handle.file.handles++
    if (handle.writable) handle.file.writers++
    return fd
  }

  get(fd: number): FileHandle | undefined {
    return this.#byFd.get(fd)
  }

  /** Forgets handle `fd`; its file's handle count drops. */
  remove(fd: number): FileHandle | undefined {
    const handle = this.#byFd.get(fd)
    if (!handle) return undefined
    this.#byFd.delete(fd)
    handle.file.handles--
    if (handle.writable) handle.file.writers--
    return handle
  }

  /** The shared file open at `path` (or at the hidden name libfuse gave it). */
  file(path: string): OpenFile | undefined {
    return this.#byPath.get(path) ?? this.#hidden.get(path)
  }

  register(file: OpenFile): void {
    this.#byPath.set(file.path, file)
  }

  /**
   * Lets go of `file` if it is still the one registered at its path. A hidden name stays until
   * libfuse unlinks it, just after the last close.
   */
  unregister(file: OpenFile): void {
    if (this.#byPath.get(file.path) !== file) return
    this.#byPath.delete(file.path)
    this.#changed(file.path)
  }

  /** Files open at or beneath `path` (commits before a rename; drain). */
  filesUnder(path: string): OpenFile[] {
    return [...this.#byPath.values()].filter((f) => within(f.path, path))
  }

  /** Every file any handle holds, shared or not, and the hidden ones (to seal them all). */
  allFiles(): Set<OpenFile> {
    const out = new Set<OpenFile>(this.#byPath.values())
    for (const f of this.#hidden.values()) if (f) out.add(f)
    for (const h of this.#byFd.values()) out.add(h.file)
    return out
  }

  /** The secret at `path` was replaced from elsewhere: its open file keeps its content, unstored. */
  orphan(path: string): void {
    const file = this.#byPath.get(path)
    if (file) this.#orphan(file)
    this.#changed(path)
  }

  /** Everything at or beneath `path` was deleted. */
  orphanUnder(path: string): void {
    for (const file of this.filesUnder(path)) this.#orphan(file)
    this.#changedUnder(path)
  }

  /** Everything at or beneath `from` moved to `to`; whatever was open at `to` was replaced. */
  move(from: string, to: string): void {
    const moving = this.filesUnder(from)
    for (const f of moving) this.#byPath.delete(f.path)
    this.orphanUnder(to)
    for (const f of moving) {
      f.path = to + f.path.slice(from.length)
      this.#byPath.set(f.path, f)
    }
    this.#changedUnder(from)
  }

  /** libfuse renamed an unlinked open file to `name`: it is known by that name only here. */
  hide(name: string, file: OpenFile | undefined): void {
    this.#hidden.set(name, file)
  }

  /** libfuse's unlink of a hidden name (the last close of an unlinked file). */
  unhide(name: string): boolean {
    return this.#hidden.delete(name)
  }

  /**
   * Reads `path` for an open with `load`, again if the path's shared file changed meanwhile (one
   * committed, or let go, while the read was in flight), so that no open starts from content that
   * a writer has already replaced.
   */
  async load<T>(path: string, load: () => Promise<T>, dispose: (value: T) => void): Promise<T> {
    let loads = this.#loads.get(path)
    if (!loads) this.#loads.set(path, (loads = new Set()))
    const mine = { changed: false }
    loads.add(mine)
    try {
      for (;;) {
        mine.changed = false
        const value = await load()
        if (!mine.changed) return value
        dispose(value)
      }
    } finally {
      loads.delete(mine)
      if (loads.size === 0) this.#loads.delete(path)
    }
  }

  /** A commit of `path` landed: a read of it in flight may hold what came before. */
  committed(path: string): void {
    this.#changed(path)
  }

  #orphan(file: OpenFile): void {
    file.orphaned = true
    this.#byPath.delete(file.path)
  }

  #changed(path: string): void {
    for (const load of this.#loads.get(path) ?? []) load.changed = true
  }

  #changedUnder(path: string): void {
    for (const [p, loads] of this.#loads) if (within(p, path)) for (const load of loads) load.changed = true
  }
}
