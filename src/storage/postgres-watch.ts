// Change notification for daemons sharing one PostgreSQL store. Every write transaction bumps a
// change counter and sends, on commit, a NOTIFY naming its keys and its number. One dedicated
// connection LISTENs and passes on what other stores wrote. What may have been missed becomes
// `{all: true}`: after the connection is lost (it is opened again with backoff), and when the
// counter, polled on that connection, moved by a number no notification named.

import pg from 'pg'
import type { StorageChange } from './storage.js'
import { CHANNEL, META } from './postgres-schema.js'

/** Milliseconds (tests shorten them). */
export interface WatchTimings {
  /** How often the change counter is read. A lost notification is noticed within two polls. */
  poll: number
  /** First and longest wait before opening a lost LISTEN connection again. */
  reconnectMin: number
  reconnectMax: number
}

/** What a write transaction announces: whose it is, its counter number, and what it changed. */
export interface ChangeNotice {
  origin: string
  change: number
  keys?: string[]
  prefixes?: string[]
  all?: true
}

/** A NOTIFY payload must stay under 8000 bytes; past this many, a write says only `all`. */
export const MAX_NOTICE_BYTES = 7000

export type ChangeListener = (change: StorageChange) => void

export class ChangeWatcher {
  readonly #config: pg.ClientConfig
  readonly #origin: string
  readonly #timings: WatchTimings
  /** Makes sure the tables are there (a new database): the counter is read from one of them. */
  readonly #schema: () => Promise<void>
  readonly #listeners = new Set<ChangeListener>()
  #client: pg.Client | undefined
  /** The connection being opened; its notifications count already. */
  #opening: pg.Client | undefined
  #stopped = false
  #backoff: number
  #reconnectTimer: NodeJS.Timeout | undefined
  #pollTimer: NodeJS.Timeout | undefined
  #polling = false
  /** Whether a connection was ever lost or failed: the next one reports `all`. */
  #missedSome = false
  /** Counter numbers named by notifications and not yet judged. */
  readonly #named = new Set<number>()
  /** Every number up to this one was judged; numbers up to `#seen` are judged at the next poll. */
  #judged = 0
  #seen = 0
  /** The counter before what the first listener loaded: the first connection judges from there. */
  #since: number | undefined

  constructor(config: pg.ClientConfig, origin: string, timings: WatchTimings, schema: () => Promise<void>) {
    this.#config = config
    this.#origin = origin
    this.#timings = timings
    this.#schema = schema
    this.#backoff = timings.reconnectMin
  }

  /**
   * Adds a listener; the first one opens the LISTEN connection, and with `since` (the counter read
   * before what the listener loaded) hears `all` if changes came between then and the LISTEN.
   * Returns its stop function.
   */
  add(listener: ChangeListener, since?: number): () => void {
    this.#listeners.add(listener)
    if (this.#listeners.size === 1 && !this.#stopped) {
      this.#since = since
      this.#start()
    }
    return () => {
      this.#listeners.delete(listener)
      if (this.#listeners.size === 0) void this.#pause()
    }
  }

  /** Stops for good: the connection is closed and no timer is left. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#listeners.clear()
    await this.#pause()
  }

  #start(): void {
    this.#pollTimer = setInterval(() => void this.#poll(), this.#timings.poll)
    this.#pollTimer.unref()
    void this.#connect()
  }

  async #pause(): Promise<void> {
    clearInterval(this.#pollTimer)
    clearTimeout(this.#reconnectTimer)
    this.#pollTimer = this.#reconnectTimer = undefined
    const client = this.#client
    this.#client = undefined
    await client?.end().catch(() => {})
  }

  get #active(): boolean {
    return !this.#stopped && this.#listeners.size > 0
  }

  async #connect(): Promise<void> {
    if (this.#opening || this.#client || !this.#active) return
    const client = new pg.Client(this.#config)
    this.#opening = client
    client.on('error', () => this.#lost(client))
    client.on('end', () => this.#lost(client))
    client.on('notification', (m) => {
      if ((client === this.#client || client === this.#opening) && m.channel === CHANNEL) this.#notified(m.payload)
    })
    try {
      await this.#schema()
      await client.connect()
      await client.query(`LISTEN ${CHANNEL}`)
      // Read after LISTEN: a change counted later is also notified.
      const counter = await readCounter(client)
      if (!this.#active) {
        await client.end().catch(() => {})
        return
      }
      this.#client = client
      // Changes since what the listener loaded, before the LISTEN, were named by no notification:
      // the next poll finds them missed.
      this.#judged = Math.min(this.#since ?? counter, counter)
      this.#seen = counter
      this.#since = undefined
      for (const n of this.#named) if (n <= this.#judged) this.#named.delete(n)
      this.#backoff = this.#timings.reconnectMin
      if (this.#missedSome) {
        this.#missedSome = false
        this.#emit({ all: true })
      }
    } catch {
      await client.end().catch(() => {})
      this.#missedSome = true
      this.#retry()
    } finally {
      this.#opening = undefined
    }
  }

  /** The LISTEN connection failed or ended: open another, after a wait. */
  #lost(client: pg.Client): void {
    if (client !== this.#client) return // one being opened fails its connect() instead
    this.#client = undefined
    void client.end().catch(() => {})
    this.#missedSome = true
    this.#retry()
  }

  #retry(): void {
    if (!this.#active || this.#reconnectTimer) return
    const wait = this.#backoff
    this.#backoff = Math.min(this.#backoff * 2, this.#timings.reconnectMax)
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined
      void this.#connect()
    }, wait)
    this.#reconnectTimer.unref()
  }

  #notified(payload: string | undefined): void {
    let notice: ChangeNotice | undefined
    try {
      notice = JSON.parse(payload ?? '') as ChangeNotice
    } catch {}
    if (!notice || typeof notice.origin !== 'string' || typeof notice.change !== 'number') {
      this.#emit({ all: true }) // a writer this code does not know
      return
    }
    this.#named.add(notice.change)
    if (notice.origin === this.#origin) return
    if (notice.all) this.#emit({ all: true })
    else this.#emit({ keys: notice.keys ?? [], prefixes: notice.prefixes ?? [] })
  }

  /**
   * Reads the counter. The numbers the previous poll saw have had a whole period for their
   * notifications to arrive: any of them that none named was a change missed.
   */
  async #poll(): Promise<void> {
    const client = this.#client
    if (!client || this.#polling) return
    this.#polling = true
    try {
      const counter = await readCounter(client)
      if (client !== this.#client) return
      const missed = this.#unnamedUpTo(this.#seen)
      this.#judged = this.#seen
      this.#seen = counter
      if (missed) this.#emit({ all: true })
    } catch {
      // The connection is broken, or the server slow past the query timeout: start afresh.
      this.#lost(client)
    } finally {
      this.#polling = false
    }
  }

  /** Whether some number in (judged, upTo] was named by no notification; forgets those judged. */
  #unnamedUpTo(upTo: number): boolean {
    let missed = upTo - this.#judged > this.#named.size
    for (let n = this.#judged + 1; !missed && n <= upTo; n++) missed = !this.#named.has(n)
    for (const n of this.#named) if (n <= upTo) this.#named.delete(n)
    return missed
  }

  #emit(change: StorageChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change)
      } catch {
        // A listener's failure is its own; the others still hear.
      }
    }
  }
}

async function readCounter(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ changes: string }>(`SELECT changes FROM ${META}`)
  return Number(rows[0]!.changes)
}

/** The payload a write transaction sends: its keys, or only `all` when they would not fit. */
export function noticePayload(origin: string, keys: string[], prefixes: string[]): string {
  // The change number is filled in by the statement that bumps the counter (see PostgresStorage).
  const full = JSON.stringify({ origin, change: 0, keys, prefixes })
  if (Buffer.byteLength(full) <= MAX_NOTICE_BYTES) return full
  return JSON.stringify({ origin, change: 0, all: true })
}
