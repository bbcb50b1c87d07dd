// Named locks among the daemons that share one PostgreSQL store (Storage.locked): session-level
// advisory locks, all held on one connection of this daemon's own, so that however many are held
// at once, the pool's connections stay free for the work done under them. The server gives a lock
// to one session at a time and takes back a session's locks when its connection ends, so a daemon
// killed while holding one holds it no longer. A session's advisory locks are its own to take
// again, so callers in this daemon wait their turn here first, one per lock at a time.

import pg from 'pg'
import { Turns } from '../turns.js'
import { busy } from '../errors.js'
import { LockLost, type LockHeld } from './storage.js'

/** Between two tries of a lock another daemon holds. */
const RETRY_MS = 50

/** A lock as the server lists it (pg_locks): of the session `pid`, keys `space` and `id`. */
export interface LockHolder {
  pid: number
  space: number
  id: number
}

export class PostgresLocks {
  readonly #config: pg.ClientConfig
  readonly #space: number
  /** How long to wait for a lock before giving up (ms). */
  readonly #waitMs: number
  /** This daemon's callers, by lock. */
  readonly #turns = new Turns<number>()
  /** The locks held now, by the check each was given with. */
  readonly #holding = new Map<LockHeld, { connection: Promise<pg.Client>; id: number }>()
  /** Each connection's server process (session), for pg_locks. */
  readonly #pids = new WeakMap<pg.Client, number>()
  #client: Promise<pg.Client> | undefined
  #closed = false

  constructor(config: pg.ClientConfig, space: number, waitMs: number) {
    this.#config = config
    this.#space = space
    this.#waitMs = waitMs
  }

  /** Runs `fn` while holding lock `id`; fails with `busy` after waiting #waitMs for it. */
  locked<T>(id: number, fn: (held: LockHeld) => Promise<T>, busyMessage: string): Promise<T> {
    return this.#turns.take(id, () => this.#hold(id, fn, busyMessage))
  }

  /**
   * The session that must still hold the lock `held` was given with, for a write to check in its
   * own transaction (PostgresStorage.batch); LockLost if this daemon knows it no longer does.
   */
  async holder(held: LockHeld): Promise<LockHolder> {
    const lock = this.#holding.get(held)
    if (lock && this.#client === lock.connection) {
      const pid = this.#pids.get(await lock.connection)
      if (pid !== undefined && this.#client === lock.connection) return { pid, space: this.#space, id: lock.id }
    }
    throw new LockLost()
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#client) await this.#drop(this.#client)
  }

  async #hold<T>(id: number, fn: (held: LockHeld) => Promise<T>, busyMessage: string): Promise<T> {
    const deadline = Date.now() + this.#waitMs
    let connection: Promise<pg.Client>
    for (;;) {
      connection = this.#connection()
      const { rows } = await this.#on<{ got: boolean }>(connection, 'SELECT pg_try_advisory_lock($1, $2) AS got', [
        this.#space,
        id,
      ])
      if (rows[0]!.got) break
      if (Date.now() > deadline) throw busy(busyMessage)
      await new Promise((r) => setTimeout(r, RETRY_MS))
    }
    // The server lets a session's locks go only with the session: a statement answered on the
    // connection that took the lock shows that it is held still.
    const held: LockHeld = async () => {
      if (this.#client === connection) {
        const answered = await this.#on(connection, 'SELECT 1', []).then(
          () => true,
          () => false,
        )
        if (answered && this.#client === connection) return
      }
      throw new LockLost()
    }
    this.#holding.set(held, { connection, id })
    try {
      return await fn(held)
    } finally {
      this.#holding.delete(held)
      // Should the unlock fail, the connection is ended, and the server lets the lock go with it;
      // a connection no longer in use took its locks with it.
      if (this.#client === connection)
        await this.#on(connection, 'SELECT pg_advisory_unlock($1, $2)', [this.#space, id]).catch(() => {})
    }
  }

  /** A statement on `connection`; one that fails ends it (and every lock it held). */
  async #on<R extends pg.QueryResultRow>(
    connection: Promise<pg.Client>,
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await (await connection).query<R>(text, values)
    } catch (e) {
      void this.#drop(connection)
      throw e
    }
  }

  #connection(): Promise<pg.Client> {
    if (this.#closed) return Promise.reject(new Error('the PostgreSQL store is closed'))
    if (this.#client) return this.#client
    const connection: Promise<pg.Client> = (async () => {
      const client = new pg.Client(this.#config)
      // A connection the server or the network ended: the next statement opens another.
      client.on('error', () => void this.#drop(connection))
      try {
        await client.connect()
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
        this.#pids.set(client, rows[0]!.pid)
      } catch (e) {
        await client.end().catch(() => {})
        throw e
      }
      return client
    })()
    this.#client = connection
    return connection
  }

  /** Ends `connection`, if it is still the one in use (a later one is left alone). */
  async #drop(connection: Promise<pg.Client>): Promise<void> {
    if (this.#client !== connection) return
    this.#client = undefined
    await connection.then((c) => c.end()).catch(() => {})
  }
}
