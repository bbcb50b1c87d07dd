// The security barrier: everything above it sees plaintext logical paths and values; everything
// below it (the physical storage) sees only ciphertext and encrypted names.

import type { LockHeld } from '../storage/storage.js'

export type { LockHeld }
export { LockLost } from '../storage/storage.js'

export type BarrierOp =
  | { op: 'put'; path: string; value: Uint8Array }
  | { op: 'delete'; path: string }
  /** Deletes every entry under the directory `prefix` (which ends in '/'). */
  | { op: 'delete-prefix'; prefix: string }

/** Logical paths other processes sharing the store changed; `all` when some may have been missed. */
export type BarrierChange = { paths: string[]; dirs: string[] } | { all: true }

/** What Barrier.probe found. */
export interface Probe {
  value: Uint8Array | undefined
  dir: boolean
}

export interface Barrier {
  readonly sealed: boolean
  get(path: string): Promise<Uint8Array | undefined>
  /** `get(path)`, and whether `path` is also a directory (anything lies beneath it), in one query. */
  probe(path: string): Promise<Probe>
  put(path: string, value: Uint8Array): Promise<void>
  delete(path: string): Promise<void>
  /**
   * Immediate children of the directory `prefix` ('' or ending in '/'), sorted; directories end in
   * '/'. With `limit`, at most that many, in no particular order.
   */
  list(prefix: string, limit?: number): Promise<string[]>
  /** Applies every op or none; with `whileHeld`, only while that lock is still this process's (Storage.batch). */
  batch(ops: BarrierOp[], whileHeld?: LockHeld): Promise<void>
  /**
   * Runs `fn` while no other process sharing the store runs a `locked` of the same path: for a
   * change made of steps outside the store too (a password set in a database, then stored). Fails
   * with `busy` when the lock is not had in a bounded time. `fn` calls `held` before each step it
   * cannot undo (see LockHeld). Callers in one process serialise their own changes; a store no
   * other process shares just runs `fn`, whose lock is never lost.
   */
  locked<T>(path: string, fn: (held: LockHeld) => Promise<T>): Promise<T>
}

/** Storage as a backend sees it: the same operations, confined to one prefix. */
export type StorageView = Barrier
