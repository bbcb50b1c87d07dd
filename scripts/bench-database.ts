// Benchmark of the database backend on a PostgreSQL 15 of its own.
// 1. A cold `cat creds/NAME` on a dev daemon's mount (a write-ahead record, CREATE ROLE ... LOGIN
//    PASSWORD ... VALID UNTIL ... and GRANT SELECT in one transaction, the lease stored) against
//    the same statements run directly with node-postgres from this process, in one transaction
//    over a pooled connection, alternating, medians of the rounds. Aim: <= 1.2x. A `cat` of a
//    stored secret is timed too: starting cat and FUSE's round trips cost the same for any file,
//    so the ratio over it is what minting costs over node-postgres.
// 2. 1,000 users minted through a Core in-process (on SQLite, as the daemon keeps it) with a short
//    TTL, then the time from the last lease's expiry until every one is gone from pg_roles (polled
//    every 100 ms). Aim: <= 10 s.
// Needs PostgreSQL 15 (scripts/setup.sh installs it) and FUSE.
// Run: npm run build && node dist/scripts/bench-database.js [--rounds 30] [--users 1000] [--ttl 20]
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { Core, builtinBackends } from '../src/core/core.js'
import { encodeFields } from '../src/core/secret-data.js'
import { SqliteStorage } from '../src/storage/sqlite-storage.js'
import { randomAlnum } from '../src/crypto/random-text.js'
import { expirationText } from '../src/backends/database/statements.js'
import { havePostgres, startPostgres, type Postgres } from '../test/helpers/postgres.js'
import { coldCatRounds } from './lib/catter.js'
import { msSince, startDevDaemon } from './lib/dev-daemon.js'

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) || fallback : fallback
}
const rounds = arg('--rounds', 30)
const users = arg('--users', 1000)
const ttl = arg('--ttl', 20)

// One string, as a Vault role's creation_statements usually is: sent as one query by both sides.
const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON app.visible TO "{{name}}";`

const cleanups: (() => unknown)[] = []
const scope = {
  teardown: (fn: () => unknown) => void cleanups.unshift(fn),
  plan: (_n: number, reason?: string) => {
    throw new Error(reason ?? 'skipped')
  },
}

const config = (p: Postgres, roles: string) => ({
  plugin_name: 'postgresql-database-plugin',
  connection_url: `postgresql://{{username}}:{{password}}@${p.host}:${p.port}/postgres?sslmode=disable`,
  username: p.superuser,
  password: p.superPassword,
  allowed_roles: roles,
})

/** Part 1: cold `cat creds/NAME` against node-postgres directly, and a cat of a stored secret. */
async function coldCat(p: Postgres, direct: pg.Pool) {
  const d = await startDevDaemon()
  cleanups.unshift(() => d.stop())
  await d.secretfs('mount', 'database')
  await d.secretfs('write', 'database/config/pg', ...Object.entries(config(p, 'readonly')).map(([k, v]) => `${k}=${v}`))
  await d.secretfs(
    'write',
    'database/roles/readonly',
    'db_name=pg',
    `creation_statements=${CREATE}`,
    'default_ttl=1h',
    'max_ttl=24h',
  )
  await d.secretfs('write', 'secret/static', 'value=x')
  const times = await coldCatRounds({
    rounds,
    floorFile: path.join(d.mountpoint, 'secret/static'),
    file: path.join(d.mountpoint, 'database/creds/readonly'),
    check: (out) => {
      if (!JSON.parse(out).password) throw new Error('cat printed no credentials')
    },
    async direct(i) {
      const statements = CREATE.replaceAll('{{name}}', `direct-${i}`)
        .replace('{{password}}', randomAlnum(32))
        .replace('{{expiration}}', expirationText(new Date(Date.now() + 3600_000)))
      const client = await direct.connect()
      try {
        await client.query('BEGIN')
        await client.query(statements)
        await client.query('COMMIT')
      } finally {
        client.release()
      }
    },
    // Untimed: the catalog stays the same size from round to round.
    async between(i) {
      await direct.query(`REVOKE ALL ON app.visible FROM "direct-${i}"; DROP ROLE "direct-${i}"`)
      await d.secretfs('revoke', '--prefix', 'database/')
    },
  })
  const left = await direct.query(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-secretfs-%'`)
  if (left.rows[0].n !== 0) throw new Error(`${left.rows[0].n} users of the daemon were not dropped by revoke`)
  return { creds: times.cat, sql: times.direct, floor: times.floor }
}

/** Part 2: `users` users minted in-process with a short TTL; the time from the last expiry until all are dropped. */
async function expiry(p: Postgres, direct: pg.Pool) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secretfs-bench-'))
  cleanups.unshift(() => fs.rmSync(dir, { recursive: true, force: true }))
  // Failed revocations are logged as warnings, and retried with backoff: counted.
  const warnings: string[] = []
  const log = { info() {}, warn: (m: string) => void warnings.push(m), error: (m: string) => void warnings.push(m) }
  const core = new Core({ storage: new SqliteStorage(path.join(dir, 'store.db')), backends: builtinBackends, log })
  cleanups.unshift(() => core.close())
  const unlock = { kind: 'key-file', key: Buffer.alloc(32, 42) } as const
  await core.initialize(unlock)
  await core.unseal(unlock)
  await core.mount('database', 'database')
  await core.write('database/config/pg', encodeFields(config(p, 'expiring')))
  await core.write(
    'database/roles/expiring',
    encodeFields({ db_name: 'pg', creation_statements: CREATE, default_ttl: `${ttl}s`, max_ttl: '1h' }),
  )
  const pool = 4 // config/NAME's default max_open_connections: one read per pooled connection
  const expires: number[] = []
  let next = 0
  const start = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: pool }, async () => {
      while (next < users) {
        next++
        expires.push((await core.read('database/creds/expiring')).lease!.expires.getTime())
      }
    }),
  )
  const mintMs = msSince(start)
  const lastExpiry = Math.max(...expires)
  const firstExpiry = Math.min(...expires)
  if (Date.now() >= firstExpiry)
    throw new Error(`minting ${users} users took ${Math.round(mintMs)} ms, past the first expiry: raise --ttl`)

  const count = async () =>
    (await direct.query(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-secretfs-expiring-%'`)).rows[0]
      .n as number
  const made = await count()
  if (made !== users) throw new Error(`pg_roles holds ${made} users, not ${users}`)
  let gone = -1
  for (;;) {
    const n = await count()
    if (n === 0) {
      gone = Date.now()
      break
    }
    if (Date.now() > lastExpiry + 120_000)
      throw new Error(
        `${n} users still there 2 minutes after the last expiry; ${warnings.length} failed revocations, such as: ${[...new Set(warnings)].slice(0, 3).join(' / ')}`,
      )
    await new Promise((r) => setTimeout(r, 100))
  }
  const leasesLeft = core.listLeases('database/').length
  // Expiry spreads out as minting does; revoking as many at once is the case with no spread.
  await core.write(
    'database/roles/expiring',
    encodeFields({ db_name: 'pg', creation_statements: CREATE, default_ttl: '1h', max_ttl: '1h' }),
  )
  next = 0
  await Promise.all(
    Array.from({ length: pool }, async () => {
      while (next < users) {
        next++
        await core.read('database/creds/expiring')
      }
    }),
  )
  const revokeStart = process.hrtime.bigint()
  await core.revokeLeasePrefix('database/')
  const revokeAllMs = msSince(revokeStart)
  if ((await count()) !== 0) throw new Error('revoking every lease left users behind')
  return {
    mintMs,
    revokeAllMs,
    spreadMs: lastExpiry - firstExpiry,
    droppedMs: gone - lastExpiry,
    sinceFirstMs: gone - firstExpiry,
    leasesLeft,
    warnings,
  }
}

async function main(): Promise<void> {
  havePostgres(scope)
  const p = await startPostgres(scope)
  await p.query(`
    CREATE SCHEMA app;
    CREATE TABLE app.visible (v text); INSERT INTO app.visible VALUES ('hello');
    GRANT USAGE ON SCHEMA app TO PUBLIC;
  `)
  const direct = new pg.Pool({ connectionString: `${p.url}?sslmode=disable`, max: 4 })
  direct.on('error', () => {})
  cleanups.unshift(() => direct.end())
  await direct.query('SELECT 1') // a warm pooled connection, as the daemon's is from its second read on

  const c = await coldCat(p, direct)
  const e = await expiry(p, direct)
  const row = (what: string, value: string, aim = '') => console.log(`${what.padEnd(50)} ${value.padStart(10)}  ${aim}`)
  console.log(`database backend, PostgreSQL 15 on loopback; ${rounds} rounds, medians`)
  row('cold cat creds/NAME (ms)', c.creds.toFixed(2))
  row('same CREATE ROLE + GRANT via node-postgres (ms)', c.sql.toFixed(2))
  row('ratio', (c.creds / c.sql).toFixed(2) + 'x', 'aim <= 1.2x')
  row('cat of a stored secret (ms)', c.floor.toFixed(2))
  row('ratio over the stored-secret cat', ((c.creds - c.floor) / c.sql).toFixed(2) + 'x')
  row(`minting ${users} users in-process, 4 at once (ms)`, Math.round(e.mintMs).toString(), `TTL ${ttl}s`)
  row('spread of their expiry times (ms)', e.spreadMs.toString())
  row('all dropped from pg_roles after last expiry (ms)', e.droppedMs.toString(), 'aim <= 10000')
  row('all dropped after the first expiry (ms)', e.sinceFirstMs.toString())
  row(`${users} revoked at once, by revoke-prefix (ms)`, Math.round(e.revokeAllMs).toString(), 'aim <= 10000')
  row('leases left', e.leasesLeft.toString())
  row('revocations that failed and were retried', e.warnings.length.toString())
  if (e.warnings.length > 0) console.log(`  the first: ${e.warnings[0]}`)
}

try {
  await main()
} finally {
  for (const fn of cleanups) await fn()
}
