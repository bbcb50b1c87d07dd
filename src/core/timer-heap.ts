// Many deadlines, one timer: a binary min-heap of (time, key) and a single setTimeout for the
// earliest. Rescheduling or cancelling a key leaves its old heap entry behind; such stale entries
// are recognised (their time is no longer the key's) and dropped when they reach the top.

/** setTimeout's longest delay; a later deadline is re-armed when this one fires. */
const MAX_DELAY_MS = 2 ** 31 - 1

interface Entry {
  at: number
  key: string
}

export class TimerHeap {
  readonly #heap: Entry[] = []
  /** Each scheduled key's current deadline (ms since the epoch). */
  readonly #due = new Map<string, number>()
  readonly #fire: (keys: string[]) => void
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #armedFor = Infinity

  /** `fire` receives every key whose deadline has come, in deadline order. */
  constructor(fire: (keys: string[]) => void, now: () => number = Date.now) {
    this.#fire = fire
    this.#now = now
  }

  get size(): number {
    return this.#due.size
  }

  /** Calls `fire` with `key` at `at` (ms since the epoch), replacing any deadline it had. */
  schedule(key: string, at: number): void {
    this.#due.set(key, at)
    this.#push({ at, key })
    if (at < this.#armedFor) this.#arm()
  }

  cancel(key: string): void {
    this.#due.delete(key)
  }

  clear(): void {
    this.#due.clear()
    this.#heap.length = 0
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#armedFor = Infinity
  }

  #arm(): void {
    clearTimeout(this.#timer)
    this.#dropStale()
    const top = this.#heap[0]
    if (!top) {
      this.#timer = undefined
      this.#armedFor = Infinity
      return
    }
    this.#armedFor = top.at
    const delay = Math.min(Math.max(0, top.at - this.#now()), MAX_DELAY_MS)
    this.#timer = setTimeout(this.#tick, delay)
    // Deadlines never keep the process alive: a daemon stops when its work is done.
    this.#timer.unref()
  }

  readonly #tick = (): void => {
    this.#timer = undefined
    this.#armedFor = Infinity
    const now = this.#now()
    const keys: string[] = []
    for (;;) {
      this.#dropStale()
      const top = this.#heap[0]
      if (!top || top.at > now) break
      this.#pop()
      this.#due.delete(top.key)
      keys.push(top.key)
    }
    this.#arm()
    if (keys.length > 0) this.#fire(keys)
  }

  #dropStale(): void {
    for (let top = this.#heap[0]; top && this.#due.get(top.key) !== top.at; top = this.#heap[0]) this.#pop()
  }

  #push(entry: Entry): void {
    const h = this.#heap
    // Renewals leave stale entries behind; past a bound, the heap is rebuilt from live deadlines.
    if (h.length > 2 * this.#due.size + 1024) {
      h.length = 0
      for (const [key, at] of this.#due) if (key !== entry.key) this.#sift({ at, key })
    }
    this.#sift(entry)
  }

  #sift(entry: Entry): void {
    const h = this.#heap
    h.push(entry)
    for (let i = h.length - 1; i > 0;) {
      const parent = (i - 1) >> 1
      if (h[parent]!.at <= h[i]!.at) break
      ;[h[parent], h[i]] = [h[i]!, h[parent]!]
      i = parent
    }
  }

  #pop(): void {
    const h = this.#heap
    const last = h.pop()!
    if (h.length === 0) return
    h[0] = last
    for (let i = 0; ;) {
      const l = 2 * i + 1
      const r = l + 1
      let min = i
      if (l < h.length && h[l]!.at < h[min]!.at) min = l
      if (r < h.length && h[r]!.at < h[min]!.at) min = r
      if (min === i) break
      ;[h[min], h[i]] = [h[i]!, h[min]!]
      i = min
    }
  }
}
