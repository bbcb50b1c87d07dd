// The content of one open secret, shared by every handle open on its path, as one inode is: what
// one writer writes, every reader and writer of the path sees at once, and appends from many
// processes all land. It is handed to the core whole on close or fsync, so the store never holds
// half a write. Generated content (credentials, sys/ files) gets a file of its own per open.

import { isKind, sealed, tooLarge } from '../errors.js'
import type { MemoryBudget } from './memory-budget.js'

/** The largest content a writer may build in memory; the core's own value limit applies at commit. */
export const MAX_FILE_BYTES = 64 << 20

/** Hands content to the core: `source` is the file, so that the fs knows its own writes. */
export type Store = (path: string, value: Buffer, source: OpenFile) => Promise<void>

export interface OpenFileOptions {
  /** Registered under its path and shared (false: generated content, private to one handle). */
  shared: boolean
  /** Refuses writers (generated content, read-only entries). */
  readOnly?: boolean
  /** May be kept in the kernel's page cache (ReadResult.cacheable). */
  cacheable?: boolean
  created: Date
  modified: Date
  /** Content not yet in the store (a new file): it is committed even if nothing is written. */
  unsaved?: boolean
}

export class OpenFile {
  /** The logical path ('secret/a/b'); follows renames. */
  path: string
  readonly shared: boolean
  readonly readOnly: boolean
  readonly cacheable: boolean
  readonly created: Date
  modified: Date
  /** Handles open on it, and how many of them may write. */
  handles = 0
  writers = 0
  /** Deleted or replaced in the store: its handles keep what they have, nothing more is stored. */
  orphaned = false
  readonly #budget: MemoryBudget
  #buffer: Buffer
  #length: number
  /** Bumped by every change; the content is in the store when `committed` catches up. */
  #version = 0
  #committed = 0
  /** Sealed: the content is zeroed and every access fails. */
  #dead = false
  #commitChain: Promise<unknown> = Promise.resolve()
  #stored: boolean
  /** The version the backend refused as invalid, and why. */
  #refused: { version: number; error: unknown } | undefined

  /**
   * Takes ownership of `content` (a decrypted value, zeroed when the file is done with it); its
   * bytes are charged to `budget`, which may refuse with ENOMEM.
   */
  constructor(path: string, content: Buffer, budget: MemoryBudget, options: OpenFileOptions) {
    try {
      budget.take(content.length)
    } catch (e) {
      content.fill(0)
      throw e
    }
    this.path = path
    this.shared = options.shared
    this.readOnly = options.readOnly ?? false
    this.cacheable = options.cacheable ?? false
    this.created = options.created
    this.modified = options.modified
    this.#budget = budget
    this.#buffer = content
    this.#length = content.length
    if (options.unsaved) this.#version = 1
    this.#stored = !options.unsaved
  }

  /** Whether the store has ever held this file: false for one created here and not yet committed. */
  get stored(): boolean {
    return this.#stored
  }

  /** Sealed: fails, as every access does (fstat must not report the zeroed content's size). */
  get size(): number {
    this.#alive()
    return this.#length
  }

  /** Changes not yet in the store. */
  get dirty(): boolean {
    return this.#version !== this.#committed
  }

  /** The content as it is now: a view to read at once, never to keep. */
  view(): Buffer {
    this.#alive()
    return this.#buffer.subarray(0, this.#length)
  }

  read(target: Buffer, length: number, position: number): number {
    this.#alive()
    if (position >= this.#length) return 0
    return this.#buffer.copy(target, 0, position, Math.min(this.#length, position + length))
  }

  /** Writes at `position`, or at the end for an O_APPEND handle. */
  write(source: Buffer, length: number, position: number, append: boolean): number {
    this.#alive()
    const at = append ? this.#length : position
    this.#reserve(at + length)
    if (at > this.#length) this.#buffer.fill(0, this.#length, at)
    source.copy(this.#buffer, at, 0, length)
    this.#length = Math.max(this.#length, at + length)
    this.#changed()
    return length
  }

  truncate(size: number): void {
    this.#alive()
    if (size === this.#length) return
    this.#reserve(size)
    if (size > this.#length) this.#buffer.fill(0, this.#length, size)
    else this.#buffer.fill(0, size, this.#length)
    this.#length = size
    this.#changed()
  }

  /**
   * Hands the content to `store` if it changed since the last commit (and the file is still the
   * one at its path). Resolves once stored; a failure leaves it dirty, so the error reaches close.
   */
  commit(store: Store): Promise<void> {
    const run = this.#commitChain.then(async () => {
      this.#alive()
      if (!this.dirty || this.orphaned) return
      const version = this.#version
      // Content the backend refused is refused again at every close, without asking it again.
      if (this.#refused?.version === version) throw this.#refused.error
      // A copy: writers may go on while the core works, and the core keeps no reference.
      const value = Buffer.from(this.#buffer.subarray(0, this.#length))
      try {
        await store(this.path, value, this)
        this.#committed = version
        this.#stored = true
      } catch (e) {
        if (isKind(e, 'invalid')) this.#refused = { version, error: e }
        throw e
      } finally {
        value.fill(0)
      }
    })
    this.#commitChain = run.catch(() => {})
    return run
  }

  /** Resolves once no commit is in progress. */
  settled(): Promise<unknown> {
    return this.#commitChain
  }

  /** Zeroes the content and gives its memory back. */
  dispose(): void {
    this.#buffer.fill(0)
    this.#budget.give(this.#buffer.length)
    this.#buffer = Buffer.alloc(0)
    this.#length = 0
  }

  /** The store was sealed: the content is zeroed now, and every later access fails. */
  kill(): void {
    if (this.#dead) return
    this.#dead = true
    this.orphaned = true
    this.dispose()
  }

  #alive(): void {
    if (this.#dead) throw sealed('secretfs was sealed while this file was open; open it again once unsealed')
  }

  #changed(): void {
    this.#version++
    this.modified = new Date()
  }

  #reserve(size: number): void {
    if (size > MAX_FILE_BYTES) throw tooLarge('the file is too large to hold in memory')
    if (size <= this.#buffer.length) return
    const capacity = Math.min(MAX_FILE_BYTES, Math.max(size, this.#buffer.length * 2, 64))
    this.#budget.take(capacity - this.#buffer.length)
    const grown = Buffer.alloc(capacity)
    this.#buffer.copy(grown, 0, 0, this.#length)
    this.#buffer.fill(0)
    this.#buffer = grown
  }
}
