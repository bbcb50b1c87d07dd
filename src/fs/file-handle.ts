// An open file. Writers buffer the whole content in memory and hand it to the core on flush,
// fsync and release, so a reader never sees half a secret; readers serve a snapshot taken at
// open, which is also how generated content (credentials) is made once per open, not per chunk.

import { tooLarge } from '../errors.js'

/** Far above any backend's value limit (the core enforces that); only guards the daemon's memory. */
export const MAX_BUFFERED_BYTES = 64 << 20

export class FileHandle {
  /** The path within the secretfs namespace ('secret/a/b'); follows renames made through the fs. */
  path: string
  readonly writable: boolean
  readonly append: boolean
  #buffer: Buffer
  #length: number
  /** Bumped by every change; the content is committed when `committed` catches up. */
  #version = 0
  #committed = 0
  /** Written or truncated since open (not counting O_TRUNC or create at open). */
  #touched = false
  /** Closed (flushed) once before anything was written: see `awaitingRelease`. */
  #closedUnwritten = false
  #release!: () => void
  /** Resolves when the handle is released (its last descriptor closed) and disposed. */
  readonly released = new Promise<void>((resolve) => (this.#release = resolve))
  /** Commits of this handle run one after another. */
  #commitChain: Promise<unknown> = Promise.resolve()

  constructor(path: string, content: Uint8Array, options: { writable: boolean; append?: boolean; changed?: boolean }) {
    this.path = path
    this.writable = options.writable
    this.append = options.append ?? false
    this.#buffer = Buffer.alloc(Math.max(content.length, options.writable ? 64 : 0))
    this.#buffer.set(content)
    this.#length = content.length
    // A new or truncated file: the content here differs from the stored one before any write.
    if (options.changed) this.#version = 1
  }

  get size(): number {
    return this.#length
  }

  /** Changes not yet handed to the core. */
  get dirty(): boolean {
    return this.#version !== this.#committed
  }

  /**
   * Whether the program has written since open. A shell opens `> f`, dup2s the descriptor and
   * closes the original, which flushes before a byte is written: committing then would publish an
   * empty secret in place of the old one, half-way through `echo x > f`.
   */
  get touched(): boolean {
    return this.#touched
  }

  /** Notes a close of one descriptor; see `awaitingRelease`. */
  flushed(): void {
    if (!this.#touched) this.#closedUnwritten = true
  }

  /**
   * Emptied or created at open, then closed without a write: either `: > f` (the release follows
   * at once, and commits the empty file) or a shell redirection about to write through a dup.
   */
  get awaitingRelease(): boolean {
    return this.#closedUnwritten && !this.#touched && this.dirty
  }

  /** Resolves once no commit of this handle is in progress. */
  settled(): Promise<unknown> {
    return this.#commitChain
  }

  read(target: Buffer, length: number, position: number): number {
    if (position >= this.#length) return 0
    return this.#buffer.copy(target, 0, position, Math.min(this.#length, position + length))
  }

  write(source: Buffer, length: number, position: number): number {
    const at = this.append ? this.#length : position
    this.#reserve(at + length)
    if (at > this.#length) this.#buffer.fill(0, this.#length, at)
    source.copy(this.#buffer, at, 0, length)
    this.#length = Math.max(this.#length, at + length)
    this.#version++
    this.#touched = true
    return length
  }

  truncate(size: number): void {
    this.#reserve(size)
    if (size > this.#length) this.#buffer.fill(0, this.#length, size)
    else this.#buffer.fill(0, size, this.#length)
    this.#length = size
    this.#version++
    this.#touched = true
  }

  /**
   * Hands the content to `store` if it changed since the last commit. Resolves once stored; a
   * failure leaves the handle dirty, so the error reaches the writer's close.
   */
  commit(store: (path: string, value: Buffer) => Promise<void>): Promise<void> {
    const run = this.#commitChain.then(async () => {
      if (!this.dirty) return
      const version = this.#version
      // A copy: writes may continue while the core encrypts, and the core may keep no reference.
      const value = Buffer.from(this.#buffer.subarray(0, this.#length))
      try {
        await store(this.path, value)
        this.#committed = version
      } finally {
        value.fill(0)
      }
    })
    this.#commitChain = run.catch(() => {})
    return run
  }

  /** Forgets the content (zeroed: it is a secret). */
  dispose(): void {
    this.#release()
    this.#buffer.fill(0)
    this.#buffer = Buffer.alloc(0)
    this.#length = 0
  }

  #reserve(size: number): void {
    if (size > MAX_BUFFERED_BYTES) throw tooLarge('the file is too large to buffer')
    if (size <= this.#buffer.length) return
    const grown = Buffer.alloc(Math.min(MAX_BUFFERED_BYTES, Math.max(size, this.#buffer.length * 2)))
    this.#buffer.copy(grown, 0, 0, this.#length)
    this.#buffer.fill(0)
    this.#buffer = grown
  }
}
