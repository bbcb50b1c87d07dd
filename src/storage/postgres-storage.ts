// A store shared by several daemons: one PostgreSQL database (node-postgres), holding only what
// the barrier gives it, opaque keys and values, as SQLite does. Semantics are SQLite's: keys in
// bytewise order, writes applied in the order they were asked and grouped into one transaction
// while one is committing, each caller answered after COMMIT. Every call is bounded in time, and a
// server that is down or unreachable fails it with an `unavailable` error that names no key, value
// or password; the pool opens new connections once the server is back. Other daemons' writes are
// reported through watch() (postgres-watch.ts).

import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { SecretfsError, busy, internal, noSpace, unavailable } from '../errors.js'
import { reason } from './pg-reason.js'
import { CHANNEL, CLAIM_LOCK, ENTRIES, META, NAMED_LOCKS, ensureSchema } from './postgres-schema.js'
import { ChangeWatcher, noticePayload, type ChangeListener, type WatchTimings } from './postgres-watch.js'
import { PostgresLeadership } from './postgres-leader.js'
import { PostgresLocks, type LockHolder } from './postgres-locks.js'
import { LockLost, type Leadership, type LockHeld, type Probed, type Storage, type StorageOp } from './storage.js'

/** Milliseconds (tests shorten them). */
export interface PostgresTimings extends WatchTimings {
  /** To open a connection, or to wait for a free one in the pool. */
  connect: number
  /** For one statement to be answered (the server's statement_timeout too). */
  statement: number
}

export const DEFAULT_POSTGRES_TIMINGS: PostgresTimings = {
  connect: 5_000,
  statement: 30_000,
  poll: 1_000,
  reconnectMin: 250,
  reconnectMax: 5_000,
}

export interface PostgresStorageOptions {
  /** A postgres:// or postgresql:// URL; it may hold the password. */
  url: string
  timings?: Partial<PostgresTimings>
  /** Connections for reads (writes take one at a time). */
  poolSize?: number
}

interface Pending {
  ops: StorageOp[]
  /** The named lock the ops are written under (Storage.batch). */
  whileHeld?: LockHeld
  resolve: () => void
  reject: (e: unknown) => void
}

/** Keys sort bytewise; the first string greater than every string that starts with `prefix`. */
function prefixEnd(prefix: string): string | undefined {
  if (prefix === '') return undefined
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)
}

/** The password of a connection URL, as written and decoded: words no message may hold. */
function secretsOf(url: string): string[] {
  const words = [url]
  try {
    const password = new URL(url).password
    if (password) words.push(password, decodeURIComponent(password))
  } catch {
    // Not a URL the WHATWG parser takes; the whole of it is still hidden.
  }
  return words.sort((a, b) => b.length - a.length)
}

/** Whether `e` says the server cannot be reached or used at all, rather than refusing a statement. */
function isUnreachable(e: unknown): boolean {
  if (!(e instanceof pg.DatabaseError)) return true // the network, a timeout, a connection ended
  const code = e.code ?? ''
  // connection_exception, admin/crash shutdown, cannot_connect_now, too_many_connections,
  // invalid_authorization, invalid_password, invalid_catalog_name (no such database)
  return /^(08|57P0|53300|28|3D000)/.test(code)
}

/**
 * The error to give the caller for a failure of PostgreSQL: the server's reason with the URL and
 * its password hidden. The driver's error is not kept as the cause (a log would print it).
 */
function storeFailure(e: unknown, hide: readonly string[], statementMs: number): SecretfsError {
  if (e instanceof SecretfsError) return e
  const why = reason(e, hide)
  if (e instanceof pg.DatabaseError && e.code === '57014')
    return unavailable(`the PostgreSQL store did not answer within ${statementMs / 1000} s: ${why}`)
  if (e instanceof pg.DatabaseError && e.code === '53100')
    return noSpace(`the PostgreSQL server's disk is full; nothing was written: ${why}`)
  if (isUnreachable(e)) return unavailable(`the PostgreSQL store is unreachable: ${why}`)
  return internal(`the PostgreSQL store failed: ${why}`)
}

/** Statements for `ops`, in order: runs of puts and of deletes become one statement each. */
function statements(ops: StorageOp[]): { text: string; values?: unknown[] }[] {
  const out: { text: string; values?: unknown[] }[] = []
  for (let i = 0; i < ops.length;) {
    const op = ops[i]!
    if (op.op === 'delete-prefix') {
      const end = prefixEnd(op.prefix)
      out.push(
        end === undefined
          ? { text: `DELETE FROM ${ENTRIES}` }
          : { text: `DELETE FROM ${ENTRIES} WHERE key >= $1 AND key < $2`, values: [op.prefix, end] },
      )
      i++
      continue
    }
    let j = i
    while (j < ops.length && ops[j]!.op === op.op) j++
    const run = ops.slice(i, j) as Exclude<StorageOp, { op: 'delete-prefix' }>[]
    i = j
    if (op.op === 'delete') {
      out.push({ text: `DELETE FROM ${ENTRIES} WHERE key = ANY($1::text[])`, values: [run.map((o) => o.key)] })
      continue
    }
    // One row a key, the last value asked (ON CONFLICT may not touch a row twice in one statement).
    const last = new Map<string, Buffer>()
    for (const o of run) if (o.op === 'put') last.set(o.key, bytes(o.value))
    out.push({
      text:
        `INSERT INTO ${ENTRIES} (key, value) SELECT * FROM unnest($1::text[], $2::bytea[]) ` +
        `ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
      values: [[...last.keys()], [...last.values()]],
    })
  }
  return out
}

const ignore = () => {}

const bytes = (v: Uint8Array): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength)

/** What a write transaction changed, for the other daemons' watchers. */
function changedBy(ops: StorageOp[]): { keys: string[]; prefixes: string[] } {
  const keys = new Set<string>()
  const prefixes = new Set<string>()
  for (const op of ops) {
    if (op.op === 'delete-prefix') prefixes.add(op.prefix)
    else keys.add(op.key)
  }
  return { keys: [...keys], prefixes: [...prefixes] }
}

// The immediate children of a prefix in one statement: from each key found, the next is sought
// past the whole subtree of a directory (prefix + name + '0', '0' following '/') or just past a
// file (its key + U+0001, no key holding U+0000). $1 prefix, $2 the end of its range, $3 limit.
const childKeys = (bounded: boolean) => {
  const below = bounded ? ' AND e.key < $2' : ''
  const rest = `substr(w.key, char_length($1) + 1)`
  return `WITH RECURSIVE w(key) AS (
      SELECT (SELECT e.key FROM ${ENTRIES} e WHERE e.key > $1${below} ORDER BY e.key LIMIT 1)
      UNION ALL
      SELECT (SELECT e.key FROM ${ENTRIES} e
              WHERE e.key >= CASE WHEN strpos(${rest}, '/') > 0
                                  THEN left(w.key, char_length($1) + strpos(${rest}, '/') - 1) || '0'
                                  ELSE w.key || chr(1) END${below}
              ORDER BY e.key LIMIT 1)
      FROM w WHERE w.key IS NOT NULL
    )
    SELECT key FROM w WHERE key IS NOT NULL LIMIT ${bounded ? '$3' : '$2'}`
}
/** Storage.probe in one round trip (keys sort bytewise, COLLATE "C"; see SqliteStorage). */
const PROBE = `SELECT (SELECT value FROM ${ENTRIES} WHERE key = $1) AS value,
  (SELECT key FROM ${ENTRIES} WHERE key >= $2 ORDER BY key LIMIT 1) AS next`
const CHILDREN = childKeys(true)
const CHILDREN_OF_ROOT = childKeys(false)

export class PostgresStorage implements Storage {
  readonly #pool: pg.Pool
  readonly #leaderships = new Set<PostgresLeadership>()
  readonly #config: pg.ClientConfig
  readonly #timings: PostgresTimings
  readonly #hide: string[]
  /** Names this instance's writes in notifications, so that its own watcher skips them. */
  readonly #origin = randomUUID()
  #schema: Promise<void> | undefined
  #watcher: ChangeWatcher | undefined
  /** Made at the first named lock. */
  #locks: PostgresLocks | undefined
  #queue: Pending[] = []
  /** Settles when the writes under way are committed (or failed). */
  #writing: Promise<void> | undefined
  #closed = false

  constructor(options: PostgresStorageOptions) {
    this.#timings = { ...DEFAULT_POSTGRES_TIMINGS, ...options.timings }
    this.#hide = secretsOf(options.url)
    this.#config = {
      connectionString: options.url,
      connectionTimeoutMillis: this.#timings.connect,
      query_timeout: this.#timings.statement,
      // The server gives up too, so that a statement the client stopped waiting for holds no lock.
      statement_timeout: this.#timings.statement,
      keepAlive: true,
      application_name: 'secretfs',
    }
    this.#pool = new pg.Pool({ ...this.#config, max: options.poolSize ?? 8, idleTimeoutMillis: 30_000 })
    // An idle connection the server closed (a restart) is an error event on the pool; without a
    // listener it would end the daemon. The next request opens a new connection.
    this.#pool.on('error', () => {})
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const { rows } = await this.#read<{ value: Buffer }>(`SELECT value FROM ${ENTRIES} WHERE key = $1`, [key])
    return rows[0]?.value
  }

  async probe(key: string, prefix: string): Promise<Probed> {
    const { rows } = await this.#read<{ value: Buffer | null; next: string | null }>(PROBE, [key, prefix])
    const { value, next } = rows[0]!
    return { value: value ?? undefined, beneath: next !== null && next.startsWith(prefix) }
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.batch([{ op: 'put', key, value }])
  }

  delete(key: string): Promise<void> {
    return this.batch([{ op: 'delete', key }])
  }

  batch(ops: StorageOp[], whileHeld?: LockHeld): Promise<void> {
    if (this.#closed) return Promise.reject(internal('the PostgreSQL store is closed'))
    return new Promise((resolve, reject) => {
      this.#queue.push({ ops, ...(whileHeld && { whileHeld }), resolve, reject })
      this.#writing ??= this.#drain()
    })
  }

  /**
   * Commits the queued writes, one transaction at a time, each holding all that waited for it; a
   * write under a named lock alone, so that the lock's loss fails it and nothing else.
   */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const locked = this.#queue.findIndex((p) => p.whileHeld)
      const group = this.#queue.splice(0, locked === 0 ? 1 : locked < 0 ? this.#queue.length : locked)
      try {
        await this.#commit(
          group.flatMap((p) => p.ops),
          group[0]!.whileHeld,
        )
      } catch (e) {
        // Rolled back (or, if the connection broke at COMMIT, perhaps not: the caller is told it failed).
        const error = storeFailure(e, this.#hide, this.#timings.statement)
        for (const p of group) p.reject(error)
        continue
      }
      for (const p of group) p.resolve()
    }
    this.#writing = undefined
  }

  async #commit(ops: StorageOp[], whileHeld?: LockHeld): Promise<void> {
    const { keys, prefixes } = changedBy(ops)
    const payload = noticePayload(this.#origin, keys, prefixes)
    const writes = statements(ops)
    // The counter is bumped and the notice sent with the writes: all or nothing.
    const notify = (at: number) =>
      `c AS (UPDATE ${META} SET changes = changes + 1 RETURNING changes)
       SELECT pg_notify($${at}, jsonb_set($${at + 1}::jsonb, '{change}', to_jsonb(c.changes))::text) FROM c`
    const holder = whileHeld && (await this.#holder(whileHeld))
    await this.#withClient(async (client) => {
      const only = writes.length === 1 && !holder ? writes[0]! : undefined
      if (only) {
        // One statement is one transaction, in one round trip: the write runs as a CTE beside the
        // notice (a single run of puts or of deletes, so its order within the statement is moot).
        const values = only.values ?? []
        await client.query(`WITH w AS (${only.text} RETURNING 1), ${notify(values.length + 1)}`, [
          ...values,
          CHANNEL,
          payload,
        ])
        return
      }
      await client.query('BEGIN')
      try {
        for (const s of writes) await client.query(s.text, s.values)
        // Whether the lock is still held is asked after the writes: whoever takes it once it is
        // lost writes the same keys after these are committed (their rows are locked until then).
        if (holder) {
          const { rowCount } = await client.query(
            `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = $1 AND classid = $2::int4::oid
               AND objid = $3::int4::oid AND objsubid = 2 AND granted`,
            [holder.pid, holder.space, holder.id],
          )
          if (rowCount === 0) throw new LockLost()
        }
        await client.query(`WITH ${notify(1)}`, [CHANNEL, payload])
        await client.query('COMMIT')
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {})
        throw e
      }
    })
  }

  async list(prefix: string, limit = Infinity): Promise<string[]> {
    const end = prefixEnd(prefix)
    const max = Number.isFinite(limit) ? limit : null
    const { rows } =
      end === undefined
        ? await this.#read<{ key: string }>(CHILDREN_OF_ROOT, [prefix, max])
        : await this.#read<{ key: string }>(CHILDREN, [prefix, end, max])
    return rows.map(({ key }) => {
      const rest = key.slice(prefix.length)
      const slash = rest.indexOf('/')
      return slash < 0 ? rest : rest.slice(0, slash + 1)
    })
  }

  async maxValueSlice(prefix: string, offset: number, length: number): Promise<Uint8Array | undefined> {
    const end = prefixEnd(prefix)
    // bytea sorts bytewise, shorter first on a tie, as SQLite's BLOBs do (and has no max()).
    const slice = `SELECT substring(value FROM $1 FOR $2) AS max FROM ${ENTRIES}`
    const largest = `ORDER BY 1 DESC LIMIT 1`
    const { rows } =
      end === undefined
        ? await this.#read<{ max: Buffer }>(`${slice} ${largest}`, [offset + 1, length])
        : await this.#read<{ max: Buffer }>(`${slice} WHERE key >= $3 AND key < $4 ${largest}`, [
            offset + 1,
            length,
            prefix,
            end,
          ])
    return rows[0]?.max
  }

  async *entries(): AsyncIterable<[string, Uint8Array]> {
    const page = 256
    const client = await this.#checkout()
    client.on('error', ignore) // a connection that breaks fails the query under way instead
    let done = false
    try {
      // One snapshot for the whole walk, however long the caller takes between pages.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      const first = await client.query<{ value: Buffer }>(`SELECT value FROM ${ENTRIES} WHERE key = ''`)
      if (first.rows[0]) yield ['', first.rows[0].value]
      for (let after = ''; ;) {
        const { rows } = await client.query<{ key: string; value: Buffer }>(
          `SELECT key, value FROM ${ENTRIES} WHERE key > $1 ORDER BY key LIMIT ${page}`,
          [after],
        )
        for (const { key, value } of rows) yield [key, value]
        if (rows.length < page) break
        after = rows[rows.length - 1]!.key
      }
      await client.query('COMMIT')
      done = true
    } catch (e) {
      throw storeFailure(e, this.#hide, this.#timings.statement)
    } finally {
      // A walk the caller left early, or that failed, ends its transaction, or else its connection.
      const clean =
        done ||
        (await client.query('ROLLBACK').then(
          () => true,
          () => false,
        ))
      client.off('error', ignore)
      client.release(!clean)
    }
  }

  /**
   * Runs `fn` while holding the store's claim: what initialises an empty store or fills it
   * (migrate) takes it, so that of two daemons starting on an empty database one creates the
   * store and the other finds it made. Waits for it at most as long as a statement may take.
   */
  async exclusively<T>(fn: () => Promise<T>): Promise<T> {
    return this.#withClient(async (client) => {
      const deadline = Date.now() + this.#timings.statement
      for (;;) {
        const { rows } = await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS got', [
          ...CLAIM_LOCK,
        ])
        if (rows[0]!.got) break
        if (Date.now() > deadline)
          throw busy('another secretfs process is creating or filling this PostgreSQL store; try again once it is done')
        await new Promise((r) => setTimeout(r, 100))
      }
      try {
        return await fn()
      } finally {
        // A failed unlock throws, and the connection (with its session lock) is dropped.
        await client.query('SELECT pg_advisory_unlock($1, $2)', [...CLAIM_LOCK])
      }
    })
  }

  /** The session that holds the named lock `held` was given with, as far as this daemon knows. */
  #holder(held: LockHeld): Promise<LockHolder> {
    if (!this.#locks) return Promise.reject(new LockLost())
    return this.#locks.holder(held)
  }

  /** Runs `fn` while holding the named lock `id` (postgres-locks.ts). */
  async locked<T>(id: number, fn: (held: LockHeld) => Promise<T>): Promise<T> {
    if (this.#closed) throw internal('the PostgreSQL store is closed')
    this.#locks ??= new PostgresLocks(this.#config, NAMED_LOCKS, this.#timings.statement)
    let inside = false
    try {
      return await this.#locks.locked(
        id,
        (held) => {
          inside = true
          return fn(held)
        },
        'another secretfs daemon sharing this store is making the same change; try again once it is done',
      )
    } catch (e) {
      // What `fn` throws is its own; what taking the lock threw is this store's failure.
      throw inside ? e : storeFailure(e, this.#hide, this.#timings.statement)
    }
  }

  watch(listener: ChangeListener, since?: number): () => void {
    if (this.#closed) return () => {}
    this.#watcher ??= new ChangeWatcher(this.#config, this.#origin, this.#timings, async () =>
      (await this.#checkout()).release(),
    )
    return this.#watcher.add(listener, since)
  }

  async changes(): Promise<number> {
    const { rows } = await this.#read<{ changes: string }>(`SELECT changes FROM ${META}`, [])
    return Number(rows[0]!.changes)
  }

  /** Contends to lead among the daemons sharing the store (postgres-leader.ts). */
  lead(changed: (leading: boolean) => void): Leadership {
    const leadership = new PostgresLeadership(this.#config, changed)
    this.#leaderships.add(leadership)
    return {
      get leading() {
        return leadership.leading
      },
      close: async () => {
        this.#leaderships.delete(leadership)
        await leadership.close()
      },
    }
  }

  /** Waits for the writes under way, then closes every connection. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#writing
    await Promise.all([...this.#leaderships].map((l) => l.close()))
    await this.#watcher?.stop()
    await this.#locks?.close()
    await this.#pool.end().catch(() => {})
  }

  /** A statement outside any transaction, tried once more on a fresh connection if the first broke. */
  async #read<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#withClient((client) => client.query<R>(text, values))
      } catch (e) {
        // A pooled connection the server dropped while idle (a restart) fails at once: try a new
        // one. A failure to connect at all is already a SecretfsError, and final.
        const stale = !(e instanceof SecretfsError) && isUnreachable(e)
        if (attempt === 2 || !stale) throw storeFailure(e, this.#hide, this.#timings.statement)
      }
    }
  }

  /** Runs `fn` on a pooled connection; one that failed is closed rather than reused. */
  async #withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#checkout()
    let broken: Error | undefined
    const onError = (e: Error) => (broken = e)
    client.on('error', onError)
    try {
      return await fn(client)
    } catch (e) {
      // A statement PostgreSQL refused leaves the connection usable; anything else may not.
      if (!(e instanceof pg.DatabaseError) || isUnreachable(e)) broken ??= e instanceof Error ? e : new Error('failed')
      throw e
    } finally {
      client.off('error', onError)
      client.release(broken ?? false)
    }
  }

  /** A pooled connection, the schema made or checked first. */
  async #checkout(): Promise<pg.PoolClient> {
    if (this.#closed) throw internal('the PostgreSQL store is closed')
    let client: pg.PoolClient
    try {
      client = await this.#pool.connect()
    } catch (e) {
      throw storeFailure(e, this.#hide, this.#timings.statement)
    }
    try {
      this.#schema ??= ensureSchema(client).catch((e: unknown) => {
        this.#schema = undefined // tried again by the next call
        throw e
      })
      await this.#schema
    } catch (e) {
      client.release(true)
      throw storeFailure(e, this.#hide, this.#timings.statement)
    }
    return client
  }
}
