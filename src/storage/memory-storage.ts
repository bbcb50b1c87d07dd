// In-memory storage for dev mode and tests. Nothing survives the process.

import { childrenOf, type Probed, type Storage, type StorageOp } from './storage.js'

export class MemoryStorage implements Storage {
  readonly #entries = new Map<string, Uint8Array>()

  async get(key: string): Promise<Uint8Array | undefined> {
    const value = this.#entries.get(key)
    return value && Uint8Array.from(value)
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#entries.set(key, Uint8Array.from(value))
  }

  async delete(key: string): Promise<void> {
    this.#entries.delete(key)
  }

  async list(prefix: string, limit = Infinity): Promise<string[]> {
    const keys = [...this.#entries.keys()].filter((k) => k.startsWith(prefix) && k !== prefix)
    return childrenOf(prefix, keys.sort()).slice(0, limit)
  }

  async probe(key: string, prefix: string): Promise<Probed> {
    const value = this.#entries.get(key)
    return {
      value: value && Uint8Array.from(value),
      beneath: [...this.#entries.keys()].some((k) => k.startsWith(prefix)),
    }
  }

  async batch(ops: StorageOp[]): Promise<void> {
    for (const op of ops) {
      if (op.op === 'put') this.#entries.set(op.key, Uint8Array.from(op.value))
      else if (op.op === 'delete') this.#entries.delete(op.key)
      else for (const k of [...this.#entries.keys()]) if (k.startsWith(op.prefix)) this.#entries.delete(k)
    }
  }

  async maxValueSlice(prefix: string, offset: number, length: number): Promise<Uint8Array | undefined> {
    let max: Buffer | undefined
    for (const [k, v] of this.#entries) {
      if (!k.startsWith(prefix)) continue
      const slice = Buffer.from(v.subarray(offset, offset + length))
      if (!max || Buffer.compare(slice, max) > 0) max = slice
    }
    return max
  }

  async *entries(): AsyncIterable<[string, Uint8Array]> {
    for (const key of [...this.#entries.keys()].sort()) {
      const value = this.#entries.get(key)
      if (value) yield [key, Uint8Array.from(value)]
    }
  }

  async close(): Promise<void> {}

  /** Raw access for tests that tamper with the store. */
  raw(): Map<string, Uint8Array> {
    return this.#entries
  }
}
