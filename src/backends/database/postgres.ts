// The database backend's one client of PostgreSQL (node-postgres): a bounded pool per
// configuration, statements run in a transaction, and errors turned into messages that give
// PostgreSQL's reason but never a password or a generated user name. Every call is bounded in
// time: connecting, waiting for a pooled connection, and each query.

import pg from 'pg'
import { SecretfsError, upstream } from '../../errors.js'
import { reason, type Hidden } from '../../storage/pg-reason.js'

export { reason, type Hidden }

/** Milliseconds (tests shorten them). */
export interface PgTimeouts {
  /** To open a connection, or to wait for a free one in the pool. */
  connect: number
  /** For one query to be answered. */
  query: number
}

export const DEFAULT_PG_TIMEOUTS: PgTimeouts = { connect: 5_000, query: 30_000 }

/** What connecting needs of a config/NAME. */
export interface ConnectionDetails {
  connection_url: string
  username: string
  password: string
  max_open_connections: number
}

/** The connection URL with `{{username}}` and `{{password}}` filled in, each escaped for a URL. */
export function connectionString(c: Pick<ConnectionDetails, 'connection_url' | 'username' | 'password'>): string {
  return c.connection_url
    .replaceAll('{{username}}', encodeURIComponent(c.username))
    .replaceAll('{{password}}', encodeURIComponent(c.password))
}

function clientConfig(c: ConnectionDetails, timeouts: PgTimeouts): pg.ClientConfig {
  return {
    connectionString: connectionString(c),
    connectionTimeoutMillis: timeouts.connect,
    query_timeout: timeouts.query,
    // The server gives up too, so that a statement the client stopped waiting for holds no lock.
    statement_timeout: timeouts.query,
    keepAlive: true,
    application_name: 'secretfs',
  }
}

/** An error to give the caller: what was being done, and PostgreSQL's reason. */
export function pgFailure(doing: string, e: unknown, hide: Hidden) {
  return upstream(`PostgreSQL: ${doing} failed: ${reason(e, hide)}`)
}

/** Tries of a transaction that meets a conflict with another (see Database.transaction). */
const CONFLICT_ATTEMPTS = 8

/** A transaction PostgreSQL refused because another touched the same rows: it can run again. */
function isConflict(e: pg.DatabaseError): boolean {
  return (
    e.code === '40001' || // serialization_failure
    e.code === '40P01' || // deadlock_detected
    (e.code === 'XX000' && /tuple concurrently (updated|deleted)/.test(e.message))
  )
}

/** Connects once with `details` and runs `SELECT 1`: what a config write's verify_connection does. */
export async function verifyConnection(details: ConnectionDetails, timeouts: PgTimeouts): Promise<void> {
  const client = new pg.Client(clientConfig(details, timeouts))
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
  } finally {
    await client.end().catch(() => {})
  }
}

/** The pool of one config/NAME, as it was when built. */
export class Database {
  readonly #pool: pg.Pool
  readonly #timeouts: PgTimeouts
  /** Settles when the last transaction that asked for its turn is done (see transaction). */
  #turn: Promise<void> = Promise.resolve()
  #ended = false

  constructor(details: ConnectionDetails, timeouts: PgTimeouts) {
    this.#timeouts = timeouts
    this.#pool = new pg.Pool({
      ...clientConfig(details, timeouts),
      max: details.max_open_connections,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
    })
    // An idle connection the server closed (a restart) is an error event on the pool; without a
    // listener it would end the daemon. The next request opens a new connection.
    this.#pool.on('error', () => {})
  }

  /** Runs `fn` with a pooled connection; `doing` names the work in an error. */
  async run<T>(doing: string, hide: Hidden, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.#ended) throw upstream('PostgreSQL: the connection pool was closed (the configuration changed)')
    let client: pg.PoolClient
    try {
      client = await this.#pool.connect()
    } catch (e) {
      throw pgFailure('connecting', e, hide)
    }
    let broken: Error | undefined
    const onError = (e: Error) => (broken = e)
    client.on('error', onError)
    try {
      return await fn(client)
    } catch (e) {
      if (e instanceof SecretfsError) throw e
      // A statement PostgreSQL refused leaves the connection usable; anything else may not.
      if (!(e instanceof pg.DatabaseError)) broken ??= e instanceof Error ? e : new Error('failed')
      throw pgFailure(doing, e, hide)
    } finally {
      client.off('error', onError)
      // A connection that failed is dropped, not handed to the next caller.
      client.release(broken ?? false)
    }
  }

  /**
   * Runs `statements` in one transaction: all of them happen, or none. This pool's transactions
   * run one at a time, each once it has its connection, and none waits for its turn longer than
   * a statement may run:
   * GRANT and REVOKE rewrite the catalog row of the object they name, and PostgreSQL refuses two
   * transactions that rewrite one row at once ("tuple concurrently updated") rather than making
   * one wait. One that meets such a conflict with another process is run again, after a short
   * random wait.
   */
  transaction(doing: string, statements: readonly string[], hide: Hidden): Promise<void> {
    return this.run(doing, hide, async (client) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.#oneAtATime(() => inTransaction(client, statements))
        } catch (e) {
          if (!(e instanceof pg.DatabaseError && isConflict(e)) || attempt === CONFLICT_ATTEMPTS) throw e
          await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * attempt))
        }
      }
    })
  }

  async #oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
    const before = this.#turn
    let done!: () => void
    this.#turn = new Promise<void>((resolve) => (done = resolve))
    // The wait is bounded too: earlier transactions take at most a statement's time each.
    let timer: NodeJS.Timeout | undefined
    const waited = await Promise.race([
      before.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), this.#timeouts.query))),
    ])
    clearTimeout(timer)
    if (!waited) {
      // Those after this one still wait for those before it.
      void before.then(done)
      throw upstream(
        `PostgreSQL: earlier changes to this database were still running after ${this.#timeouts.query / 1000} s; try again`,
      )
    }
    try {
      return await fn()
    } finally {
      done()
    }
  }

  async end(): Promise<void> {
    if (this.#ended) return
    this.#ended = true
    await this.#pool.end().catch(() => {})
  }
}

/**
 * Runs `statements` on `client` in one transaction. Without parameters each is sent as a simple
 * query, which may hold several statements (and $$-quoted bodies): it is run as written.
 */
async function inTransaction(client: pg.ClientBase, statements: readonly string[]): Promise<void> {
  await client.query('BEGIN')
  try {
    for (const s of statements) await client.query(s)
    await client.query('COMMIT')
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {})
    throw e
  }
}
