// Leading among the daemons that share one PostgreSQL store, as Vault's HA lock: a session-level
// advisory lock, held on a connection of its own. PostgreSQL gives it to one session at a time
// and takes it back when that session ends, so a leader killed with kill -9 loses it as soon as
// the server sees its connection close, and another daemon, asking every second, takes it over.
//
// A leader that can no longer reach the server stops leading at once (its health check fails
// within CHECK_TIMEOUT_MS), before the server lets its session go (keepalives end it within
// about ten seconds): two daemons never lead at once.

import pg from 'pg'
import type { Leadership } from './storage.js'

/** The lock's two keys: 'sfs' and 'lead' as numbers, for pg_try_advisory_lock(int, int). */
const LOCK = [0x736673, 0x6c656164] as const
const TRY_MS = 1000
const CHECK_TIMEOUT_MS = 2000
/** The server ends a session whose client stopped answering: 5 s idle, then 2 probes 2 s apart. */
const KEEPALIVES = '-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=2'

export class PostgresLeadership implements Leadership {
  readonly #config: pg.ClientConfig
  readonly #changed: (leading: boolean) => void
  #client: pg.Client | undefined
  #leading = false
  #closed = false
  #timer: NodeJS.Timeout | undefined
  #turn: Promise<void> = Promise.resolve()

  constructor(config: pg.ClientConfig, changed: (leading: boolean) => void) {
    this.#config = { ...config, options: [config.options, KEEPALIVES].filter(Boolean).join(' ') }
    this.#changed = changed
    this.#next(0)
  }

  get leading(): boolean {
    return this.#leading
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#turn
    // Ending the session gives the lock back.
    this.#leading = false
    await this.#drop()
  }

  #next(ms: number): void {
    if (this.#closed) return
    this.#timer = setTimeout(() => {
      this.#turn = this.#attempt().finally(() => this.#next(TRY_MS))
    }, ms)
    this.#timer.unref()
  }

  /** Takes the lock if it is free, or checks that the session holding it is alive. */
  async #attempt(): Promise<void> {
    try {
      const client = this.#client ?? (await this.#connect())
      if (this.#closed) return
      if (this.#leading) {
        await client.query('SELECT 1')
        return
      }
      const r = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [...LOCK])
      if (r.rows[0]?.locked && !this.#closed) this.#set(true)
    } catch {
      // Unreachable, or too slow to answer: whatever it held, this daemon no longer leads.
      this.#set(false)
      await this.#drop()
    }
  }

  async #connect(): Promise<pg.Client> {
    const client = new pg.Client({
      ...this.#config,
      connectionTimeoutMillis: CHECK_TIMEOUT_MS,
      query_timeout: CHECK_TIMEOUT_MS,
    })
    // A connection that breaks between two checks: the next check finds it, so nothing is thrown.
    client.on('error', () => {
      if (this.#client !== client) return
      this.#set(false)
      void this.#drop()
    })
    this.#client = client
    try {
      await client.connect()
    } catch (e) {
      this.#client = undefined
      void client.end().catch(() => {})
      throw e
    }
    return client
  }

  async #drop(): Promise<void> {
    const client = this.#client
    this.#client = undefined
    await client?.end().catch(() => {})
  }

  #set(leading: boolean): void {
    if (leading === this.#leading) return
    this.#leading = leading
    this.#changed(leading)
  }
}
