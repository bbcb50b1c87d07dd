// What the database backend's paths share: its storage view, and one connection pool per
// config/NAME, built from the configuration as it is now and ended when it changes or the backend
// is closed.

import { Turns } from '../../turns.js'
import { notFound } from '../../errors.js'
import { LockLost, type LockHeld, type StorageView } from '../../barrier/barrier.js'
import type { JsonEntry } from '../framework/json-entry.js'
import { readConfig, type DbConfig } from './path-config.js'
import { Database, type PgTimeouts } from './postgres.js'

export class DatabaseState {
  readonly storage: StorageView
  readonly timeouts: PgTimeouts
  readonly #pools = new Map<string, { modified: number; db: Database }>()
  readonly #turns = new Turns<string>()

  constructor(storage: StorageView, timeouts: PgTimeouts) {
    this.storage = storage
    this.timeouts = timeouts
  }

  /**
   * The pool of config/`name` as it is now (rebuilt when it has changed); `entry` is that
   * configuration when the caller has just read it.
   */
  async database(name: string, entry?: JsonEntry<DbConfig>): Promise<Database> {
    entry ??= await readConfig(this.storage, name)
    if (!entry) throw notFound('no such database configuration: write config/NAME first')
    const modified = entry.modified.getTime()
    const cached = this.#pools.get(name)
    if (cached?.modified === modified) return cached.db
    void cached?.db.end()
    const db = new Database(entry.data, this.timeouts)
    this.#pools.set(name, { modified, db })
    return db
  }

  /** Ends the pool of config/`name`, so the next call builds one from the new configuration. */
  configChanged(name: string): void {
    void this.#pools.get(name)?.db.end()
    this.#pools.delete(name)
  }

  /**
   * Runs `fn` after every earlier call for `key` has finished, and while no other daemon sharing
   * the store runs one for it: one rotation of a password at a time, so that the password stored is
   * the one the database was last given.
   */
  serialize<T>(key: string, fn: (held: LockHeld) => Promise<T>): Promise<T> {
    return this.#turns.take(key, () => this.storage.locked(key, fn))
  }

  /**
   * Whether a `serialize` caller's `write` under its lock (given `held`, see Storage.batch) was
   * stored: false if the lock was lost first; any other failure is thrown.
   */
  static async stored(write: Promise<void>): Promise<boolean> {
    try {
      await write
      return true
    } catch (e) {
      if (e instanceof LockLost) return false
      throw e
    }
  }

  /**
   * After changes made elsewhere that are not known one by one: ends the pools whose configuration
   * changed or is gone. One whose configuration is as it was is kept, for the work that holds it (a
   * rotation between its statements).
   */
  async refreshPools(): Promise<void> {
    for (const [name, cached] of [...this.#pools]) {
      const entry = await readConfig(this.storage, name)
      if (this.#pools.get(name) === cached && entry?.modified.getTime() !== cached.modified) this.configChanged(name)
    }
  }

  /** Ends every pool: each is made anew from its configuration at its next use. */
  dropPools(): void {
    for (const name of [...this.#pools.keys()]) this.configChanged(name)
  }
}
