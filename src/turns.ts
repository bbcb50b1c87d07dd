// Callers that must not overlap take turns by key: each runs once every earlier caller of its key
// has finished (succeeded or failed), in the order they came. Keys no caller waits on are dropped.

export class Turns<K> {
  /** The last turn taken of each key, settled when it is over. */
  readonly #last = new Map<K, Promise<unknown>>()

  /** Runs `fn` in the next turn of `key`; resolves or rejects as `fn` does. */
  take<T>(key: K, fn: () => Promise<T>): Promise<T> {
    const run = (this.#last.get(key) ?? Promise.resolve()).then(fn, fn)
    const settled = run.catch(() => {})
    this.#last.set(key, settled)
    void settled.then(() => this.#last.get(key) === settled && this.#last.delete(key))
    return run
  }
}
