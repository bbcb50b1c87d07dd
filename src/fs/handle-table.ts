// Open files by handle number, and the writers of each path: a file being written exists for
// getattr before its first commit, and a rename through the fs carries its open writers along.

import type { FileHandle } from './file-handle.js'

export class HandleTable {
  readonly #byFd = new Map<number, FileHandle>()
  readonly #writers = new Map<string, Set<FileHandle>>()
  #next = 1 // fuse-native takes 0 as "no handle"

  add(handle: FileHandle): number {
    while (this.#byFd.has(this.#next) || this.#next === 0) this.#next = (this.#next + 1) >>> 0
    const fd = this.#next
    this.#next = (this.#next + 1) >>> 0
    this.#byFd.set(fd, handle)
    if (handle.writable) this.#writersOf(handle.path, true)!.add(handle)
    return fd
  }

  get(fd: number): FileHandle | undefined {
    return this.#byFd.get(fd)
  }

  remove(fd: number): FileHandle | undefined {
    const handle = this.#byFd.get(fd)
    if (!handle) return undefined
    this.#byFd.delete(fd)
    this.#unlinkWriter(handle)
    return handle
  }

  /** The writer of `path` with uncommitted changes, if any: its size is what getattr reports. */
  pending(path: string): FileHandle | undefined {
    const set = this.#writers.get(path)
    if (!set) return undefined
    let found: FileHandle | undefined
    for (const h of set) if (h.dirty) found = h
    return found
  }

  /** Writers of `path`, or of anything beneath it when it is a directory. */
  writersUnder(path: string): FileHandle[] {
    const out: FileHandle[] = []
    for (const [p, set] of this.#writers) if (p === path || p.startsWith(path + '/')) out.push(...set)
    return out
  }

  /** Every open handle (to commit them all at shutdown). */
  all(): FileHandle[] {
    return [...this.#byFd.values()]
  }

  /** Follows a rename made through the fs. */
  rename(from: string, to: string): void {
    for (const handle of this.writersUnder(from)) {
      this.#unlinkWriter(handle)
      handle.path = to + handle.path.slice(from.length)
      this.#writersOf(handle.path, true)!.add(handle)
    }
    // Readers serve a snapshot; their path only matters for the log-free bookkeeping above.
    for (const handle of this.#byFd.values())
      if (!handle.writable && (handle.path === from || handle.path.startsWith(from + '/')))
        handle.path = to + handle.path.slice(from.length)
  }

  #writersOf(path: string, create: boolean): Set<FileHandle> | undefined {
    let set = this.#writers.get(path)
    if (!set && create) this.#writers.set(path, (set = new Set()))
    return set
  }

  #unlinkWriter(handle: FileHandle): void {
    const set = this.#writers.get(handle.path)
    if (!set) return
    set.delete(handle)
    if (set.size === 0) this.#writers.delete(handle.path)
  }
}
