// A chroot into the barrier: every key a backend uses is placed under its mount's prefix
// ('logical/<uuid>/'), so a backend can neither name nor list another mount's data.

import type { Barrier, BarrierOp, LockHeld, Probe, StorageView } from './barrier.js'

export class BarrierView implements StorageView {
  readonly #barrier: Barrier
  readonly #prefix: string

  constructor(barrier: Barrier, prefix: string) {
    if (!prefix.endsWith('/')) throw new Error('a view prefix ends in /')
    this.#barrier = barrier
    this.#prefix = prefix
  }

  get sealed(): boolean {
    return this.#barrier.sealed
  }

  get(path: string): Promise<Uint8Array | undefined> {
    return this.#barrier.get(this.#prefix + path)
  }

  probe(path: string): Promise<Probe> {
    return this.#barrier.probe(this.#prefix + path)
  }

  put(path: string, value: Uint8Array): Promise<void> {
    return this.#barrier.put(this.#prefix + path, value)
  }

  delete(path: string): Promise<void> {
    return this.#barrier.delete(this.#prefix + path)
  }

  list(prefix: string, limit?: number): Promise<string[]> {
    return this.#barrier.list(this.#prefix + prefix, limit)
  }

  locked<T>(path: string, fn: (held: LockHeld) => Promise<T>): Promise<T> {
    return this.#barrier.locked(this.#prefix + path, fn)
  }

  batch(ops: BarrierOp[], whileHeld?: LockHeld): Promise<void> {
    return this.#barrier.batch(
      ops.map((op) =>
        op.op === 'delete-prefix'
          ? { op: 'delete-prefix', prefix: this.#prefix + op.prefix }
          : { ...op, path: this.#prefix + op.path },
      ),
      whileHeld,
    )
  }
}
