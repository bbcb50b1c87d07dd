// The physical layer: opaque string keys to opaque byte values. Everything above it sees only
// this interface, so another implementation (a shared PostgreSQL store) slots in here.

import { SecretfsError } from '../errors.js'

export type StorageOp =
  | { op: 'put'; key: string; value: Uint8Array }
  | { op: 'delete'; key: string }
  /** Deletes every key that starts with `prefix`. */
  | { op: 'delete-prefix'; prefix: string }

/** Changes other processes made to a shared store; `all` when some may have been missed. */
export type StorageChange = { keys: string[]; prefixes: string[] } | { all: true }

/**
 * Given with a named lock (Storage.locked): resolves if the lock is still this process's, and
 * fails with LockLost once it is not (its holder's connection to a shared store ended, and with it
 * the lock, which another daemon may hold now). A change made under the lock calls it before each
 * step it cannot undo, so that a lock lost on the way stops the change before that step; its last
 * step, the store write, is given it instead (Storage.batch), which checks it with the write.
 */
export type LockHeld = () => Promise<void>

/** A named lock was lost (see LockHeld): the change was stopped, and can be tried again. */
export class LockLost extends SecretfsError {
  constructor() {
    super(
      'busy',
      "this daemon's lock on the change was lost (its connection to PostgreSQL ended), so the change was stopped; try again",
    )
  }
}

/** Leading among the processes that share a store (Vault's HA lock): one of them at a time. */
export interface Leadership {
  readonly leading: boolean
  /** Gives up leading, if it does, and stops contending. */
  close(): Promise<void>
}

/** What Storage.probe found. */
export interface Probed {
  value: Uint8Array | undefined
  /** Some key begins with the prefix probed. */
  beneath: boolean
}

export interface Storage {
  get(key: string): Promise<Uint8Array | undefined>
  /** Resolves once the write is durable. */
  put(key: string, value: Uint8Array): Promise<void>
  delete(key: string): Promise<void>
  /**
   * The immediate children of `prefix`, sorted: a key `prefix + 'a'` lists as `a`, and any key
   * `prefix + 'b/...'` lists once as `b/`. With `limit`, at most that many (enough to tell whether
   * a directory is empty without reading all of it).
   */
  list(prefix: string, limit?: number): Promise<string[]>
  /**
   * `get(key)`, and whether any key begins with `prefix`, in one query: all a stat needs to tell a
   * file (its value), a directory (`prefix` is the name's, key + '/') and a missing name apart.
   */
  probe(key: string, prefix: string): Promise<Probed>
  /**
   * Applies every op or none, durably. With `whileHeld` (a named lock's, see LockHeld), only while
   * that lock is still this process's: checked in the same transaction, after the writes, so that
   * another process that takes the lock later writes after them. Else none, and LockLost. (A store
   * no other process shares has no lock to lose.)
   */
  batch(ops: StorageOp[], whileHeld?: LockHeld): Promise<void>
  /**
   * The bytewise-largest `length` bytes at `offset` among the values of the keys under `prefix`
   * (undefined when there are none): the barrier's newest key term, without reading every value
   * in full where the store can avoid it.
   */
  maxValueSlice(prefix: string, offset: number, length: number): Promise<Uint8Array | undefined>
  /** Every entry, in key order, as it is stored: what copying a whole store (migrate) reads. */
  entries(): AsyncIterable<[key: string, value: Uint8Array]>
  /**
   * Tells `listener` of the changes other processes make to a store they share with this one
   * (never of this instance's own). Only stores that can be shared have it. Returns a stop function.
   */
  watch?(listener: (change: StorageChange) => void, since?: number): () => void
  /**
   * How many changes the store has had (a shared store's counter). Read before what a caller loads,
   * and given to `watch` as `since`: a change made after it that the watch did not hear of (made
   * before it began to listen) is reported as `all`. Only stores that can be shared have it.
   */
  changes?(): Promise<number>
  /**
   * Contends to lead among the processes sharing this store; `changed` hears each gain and loss.
   * Only stores that can be shared have it.
   */
  lead?(changed: (leading: boolean) => void): Leadership
  /**
   * Runs `fn` while holding the lock `id` (an int32), which one process at a time holds of those
   * sharing the store: a change made of several steps, some outside the store, is not interleaved
   * with another daemon's. Waits a bounded time for it, then fails with `busy`. `fn` is given
   * `held`, to call before each step it cannot undo (see LockHeld). Only stores that can be shared
   * have it (one process alone serialises its own changes).
   */
  locked?<T>(id: number, fn: (held: LockHeld) => Promise<T>): Promise<T>
  close(): Promise<void>
}

/** Immediate children of `prefix` among sorted `keys` (all of which start with it). */
export function childrenOf(prefix: string, sortedKeys: Iterable<string>): string[] {
  const out: string[] = []
  let last: string | undefined
  for (const key of sortedKeys) {
    const rest = key.slice(prefix.length)
    const slash = rest.indexOf('/')
    const child = slash < 0 ? rest : rest.slice(0, slash + 1)
    if (child !== last) out.push(child)
    last = child
  }
  return out
}
