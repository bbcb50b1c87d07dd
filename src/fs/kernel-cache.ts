// What the kernel caches of the low-level mount, kept true to the core. The kernel keeps names and
// attributes for CACHE_TIMEOUT seconds (a stored secret's for STABLE_CACHE_TIMEOUT) and a stored
// secret's content in its page cache (keep_cache) for as long as it likes; each change the core
// announces drops what it made stale, whoever made it: the control API, the lease system, a
// remount, another daemon on a shared store, or this mount itself. The addon runs the notifications
// on a thread of its own, since one can wait on a kernel lock held by a request that only the JS
// thread answers.
//
// A secret written through this mount keeps its inode and loses its cached attributes; a stored
// secret's new content is put in the page cache in place of the old, as a local filesystem keeps
// what was written, so that the next open and read need not read it back from the store.
// One replaced from elsewhere is what `mv new f` makes: the name gets a new inode, and programs
// holding the old one keep what they read. A seal drops every name and every cached content.
//
// It also knows which inodes' content the kernel may hold and is current, with a keyed digest of
// that content (`digest`): an open of one can be answered without reading the secret, which is read
// only if the kernel asks; and should the secret be replaced or deleted while such a handle is open,
// what the kernel still holds of it can be taken back and checked against the digest (`holds`).
// Content too large to be taken back at once (MAX_STORED) is never current: its opens read it.
// Whoever answers opens from what the kernel holds is told when an inode becomes current by a
// write's content put in the page cache, and when one stops being current (CurrentListener).

import sodium from 'sodium-native'
import type { CoreChange } from '../core/core-change.js'
import { SecureKey } from '../crypto/secure-key.js'
import type { FuseLowLevel, Session } from '../native/fuse-lowlevel.js'
import type { InodeTable } from './inode-table.js'

/** Seconds the kernel keeps names and attributes. */
export const CACHE_TIMEOUT = 1
/**
 * Seconds for a stored secret's (a backend's content that changes only through the core, so that
 * every change is invalidated; after lost notices from other daemons, the fallback drops all).
 */
export const STABLE_CACHE_TIMEOUT = 10

/**
 * The largest content put in the page cache at a write (a copy is made for the kernel), or taken
 * back from it for the holders of a secret replaced or deleted.
 */
export const MAX_STORED = 1 << 20

/** Told of the inodes that become current (see KernelCache) at a write, and of those that stop being so. */
export interface CurrentListener {
  current(ino: number): void
  dropped(ino: number): void
}

export class KernelCache {
  readonly #fuse: FuseLowLevel
  readonly #session: Session
  readonly #inodes: InodeTable
  /** Inodes whose cached content is being dropped: an open meanwhile must not keep it. */
  readonly #pending = new Map<number, number>()
  /**
   * Inodes of stored secrets whose content the kernel may cache, unchanged since and small enough
   * to be taken back (MAX_STORED), with a digest of that content.
   */
  readonly #current = new Map<number, Buffer>()
  readonly #digestKey = SecureKey.random(32)
  readonly #listener?: CurrentListener

  constructor(fuse: FuseLowLevel, session: Session, inodes: InodeTable, listener?: CurrentListener) {
    this.#fuse = fuse
    this.#session = session
    this.#inodes = inodes
    this.#listener = listener
  }

  /** Whether the page cache of `ino` may hold content older than the core's. */
  stale(ino: number): boolean {
    return this.#pending.has(ino)
  }

  /**
   * `ino` was opened; `cached`: as a stored secret whose content the kernel may keep, `content`
   * (given when small enough to be taken back, see `holds`; without it, `ino` is not current).
   */
  opened(ino: number, cached: boolean, content?: Uint8Array): void {
    if (cached && content && !this.stale(ino)) this.#current.set(ino, this.#digest(content))
    else this.#drop(ino)
  }

  /** The kernel forgot `ino`, and with it what it cached. */
  forgotten(ino: number): void {
    this.#drop(ino)
  }

  /**
   * The digest of what the kernel may cache of `ino` while that is the stored secret as it is now
   * (current); undefined otherwise.
   */
  digest(ino: number): Buffer | undefined {
    return this.stale(ino) ? undefined : this.#current.get(ino)
  }

  /** Whether `content` is the content whose digest is `digest`. */
  holds(digest: Buffer, content: Uint8Array): boolean {
    return sodium.sodium_memcmp(digest, this.#digest(content))
  }

  dispose(): void {
    this.#current.clear()
    this.#digestKey.dispose()
  }

  #drop(ino: number): void {
    if (this.#current.delete(ino)) this.#listener?.dropped(ino)
  }

  #digest(content: Uint8Array): Buffer {
    const out = Buffer.alloc(16)
    sodium.crypto_generichash_batch(out, [content], this.#digestKey.bytes)
    return out
  }

  /** Drops what `change` made stale; resolves when the kernel has been told. */
  follow(change: CoreChange, here: boolean): Promise<unknown> | undefined {
    const inodes = this.#inodes
    const told: Promise<void>[] = []
    switch (change.kind) {
      case 'written': {
        const path = fsPath(change.path)
        const ino = inodes.find(path)
        if (ino === undefined) return
        if (here) {
          told.push(this.#inode(ino, change.value))
          break
        }
        // The old inode keeps its cached content, for the programs that have it open.
        inodes.removed(path)
        this.#drop(ino)
        told.push(this.#entry(path))
        break
      }
      case 'removed':
      case 'changed': {
        const path = fsPath(change.path)
        for (const ino of inodes.removedUnder(path)) this.#drop(ino)
        told.push(this.#entry(path))
        break
      }
      case 'moved': {
        const [from, to] = [fsPath(change.from), fsPath(change.to)]
        // What was at `to` is replaced: its inodes keep their content for the programs that have it open.
        for (const ino of inodes.removedUnder(to)) this.#drop(ino)
        inodes.moved(from, to)
        told.push(this.#entry(from), this.#entry(to))
        break
      }
      case 'sealed':
      case 'reloaded': {
        // Every name, and every content a handle opened before could still read (after a seal,
        // nothing of it may; after another daemon's unknown changes, all of it is read anew).
        const mounts = inodes.mounts
        for (const ino of [...this.#current.keys()]) this.#drop(ino)
        told.push(...inodes.all.map((ino) => this.#inode(ino)))
        if (change.kind === 'sealed') inodes.removedUnder('/')
        told.push(...mounts.map((m) => this.#entry(m)))
        break
      }
    }
    return told.length > 0 ? Promise.all(told) : undefined
  }

  /** Drops the name at `path`, if the kernel holds its directory (else it holds no name in it). */
  #entry(path: string): Promise<void> {
    const slash = path.lastIndexOf('/')
    const dir = this.#inodes.find(slash === 0 ? '/' : path.slice(0, slash))
    if (dir === undefined) return Promise.resolve()
    return new Promise((resolve) => this.#fuse.invalidate(this.#session, dir, path.slice(slash + 1), () => resolve()))
  }

  /**
   * Drops the attributes and cached content of `ino`; with `content` (a stored secret's new
   * value, copied now), the page cache then holds it, and `ino` is current once that is done.
   */
  #inode(ino: number, content?: Uint8Array): Promise<void> {
    this.#drop(ino)
    this.#pending.set(ino, (this.#pending.get(ino) ?? 0) + 1)
    const stored =
      content && content.length > 0 && content.length <= MAX_STORED
        ? Buffer.from(content.buffer, content.byteOffset, content.length)
        : undefined
    const digest = stored && this.#digest(stored)
    return new Promise((resolve) =>
      this.#fuse.invalidate(
        this.#session,
        ino,
        undefined,
        (result) => {
          const left = this.#pending.get(ino)! - 1
          if (left > 0) this.#pending.set(ino, left)
          else {
            this.#pending.delete(ino)
            // The last change to it put its content in the cache.
            if (digest && result === 0) {
              this.#current.set(ino, digest)
              this.#listener?.current(ino)
            }
          }
          resolve()
        },
        stored,
      ),
    )
  }
}

/** The mount's path of a logical one ('secret/a' → '/secret/a'). */
const fsPath = (logical: string) => '/' + logical
