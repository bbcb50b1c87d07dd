// What the kernel may still hold of the attributes the filesystem gave it, and how long it may.
//
// The kernel caches a file's attributes (size, mode, times) for ATTRIBUTE_TTL_MS after a lookup
// or getattr, which halves the requests of `ls -l`, `find` and `stat` (one lookup per name
// instead of a lookup and a getattr). Changes made through the mount keep that cache right: the
// kernel updates its own copy. A change made through the control API does not, so the API
// acknowledges it only once every attribute the kernel cached before it has lapsed: a `stat` or
// a read (Node's readFile trusts the size) that starts after the API answered sees the change.
// Paths the mount has not answered for lately (almost every API write) wait for nothing.

import { setTimeout as delay } from 'node:timers/promises'

/** How long the kernel keeps attributes (libfuse's attr_timeout). */
export const ATTRIBUTE_TTL_MS = 100

/**
 * How long after an answer its attributes may still be served. The kernel counts the timeout from
 * when it receives the answer, a moment after it was sent; twice the timeout leaves room for the
 * thread that carries it to be descheduled.
 */
const LIFETIME_MS = 2 * ATTRIBUTE_TTL_MS

export class KernelCache {
  /** When each path's attributes were last answered (logical paths, 'secret/a/b'). */
  #current = new Map<string, number>()
  /** The previous generation: answers from one to two lifetimes ago. */
  #previous = new Map<string, number>()
  #generationStart = performance.now()
  /** Lookups and getattrs being answered: each may carry what the core held before a change. */
  readonly #inFlight = new Set<Promise<unknown>>()

  /** Answers a lookup or getattr of `path` with `work`: the kernel caches what it returns. */
  async attributes<T>(path: string, work: () => Promise<T>): Promise<T> {
    const answer = work()
    this.#inFlight.add(answer)
    try {
      return await answer
    } finally {
      this.#inFlight.delete(answer)
      this.#answered(path)
    }
  }

  /** How many paths are remembered (those answered within the last one or two lifetimes). */
  get size(): number {
    return this.#current.size + this.#previous.size
  }

  #answered(path: string): void {
    const now = performance.now()
    if (now - this.#generationStart > LIFETIME_MS) {
      // Older answers have lapsed: the maps hold only what a lifetime or two may still serve.
      this.#previous = now - this.#generationStart > 2 * LIFETIME_MS ? new Map() : this.#current
      this.#current = new Map()
      this.#generationStart = now
    }
    this.#current.set(path, now)
  }

  /**
   * Resolves once no attributes of `path` or a directory above it can be served from the cache.
   * Called after a change is made: answers still in flight may carry the state before it.
   */
  async lapsedFor(path: string): Promise<void> {
    await this.#answersInFlight()
    await this.#until(this.#lastAnsweredUpFrom(path))
  }

  /** The same for `dir`, the directories above it and everything beneath it (a mount's whole tree). */
  async lapsedUnder(dir: string): Promise<void> {
    await this.#answersInFlight()
    const inside = dir + '/'
    let last = this.#lastAnsweredUpFrom(dir)
    for (const map of [this.#previous, this.#current])
      for (const [p, at] of map) if (p.startsWith(inside)) last = Math.max(last, at)
    await this.#until(last)
  }

  /** The same for every path (the store was sealed). */
  async lapsedAll(): Promise<void> {
    await this.#answersInFlight()
    let last = 0
    for (const map of [this.#previous, this.#current]) for (const at of map.values()) last = Math.max(last, at)
    await this.#until(last)
  }

  async #answersInFlight(): Promise<void> {
    await Promise.allSettled([...this.#inFlight])
  }

  /** The last answer for `path` or a directory above it (0: none that may still be cached). */
  #lastAnsweredUpFrom(path: string): number {
    let last = 0
    for (let p = path; p !== ''; p = p.slice(0, Math.max(0, p.lastIndexOf('/'))))
      last = Math.max(last, this.#current.get(p) ?? this.#previous.get(p) ?? 0)
    return last
  }

  async #until(answeredAt: number): Promise<void> {
    const left = answeredAt + LIFETIME_MS - performance.now()
    if (answeredAt > 0 && left > 0) await delay(Math.ceil(left))
  }
}
