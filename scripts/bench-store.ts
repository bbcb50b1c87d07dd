// Benchmark of the PostgreSQL store against the SQLite store, in one run, on the same machine and
// disk: reads and durable writes of 64-byte secrets per second
// 1. through the core in this process (new Core({ storage }) on SqliteStorage and on
//    PostgresStorage): writes awaited one after another (each is durable when it resolves), the
//    same with 32 in flight (both stores group-commit), and reads of what was written;
// 2. through the filesystem of two real daemons (`secretfs server`), one on SQLite in its data
//    directory, one on PostgreSQL (SECRETFS_STORAGE): create, write, fsync, close, then open, read,
//    close of the files just written (never read before), with sync calls from this process;
// and 3. how long a change made through one daemon's mount takes to show on another daemon's mount
//    on the same PostgreSQL database: a value written (writeFileSync, acknowledged at close), then
//    B's file read every ~2 ms until it holds that value; p50, p99 and max (the aim is <= 1 s).
// PostgreSQL 15 is the benchmark's own server (scripts/lib/postgres-server.ts), on loopback, with
// fsync and synchronous_commit on, as SQLite runs with synchronous=FULL: both figures are durable.
// The machine is shared and its speed drifts, so rounds alternate between the two stores (which
// one goes first alternates too) and each figure is the median of the rounds.
// Needs root (FUSE mounts, and postgres run as its own user), PostgreSQL 15 (scripts/setup.sh).
// The first line says whether the run is pinned (taskset -c 0 pins it, servers included).
//   npm run build && node dist/scripts/bench-store.js [--rounds 5] [--count 500] [--changes 100]
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { Core } from '../src/core/core.js'
import { PostgresStorage } from '../src/storage/postgres-storage.js'
import { SqliteStorage } from '../src/storage/sqlite-storage.js'
import type { Storage } from '../src/storage/storage.js'
import { cliPath } from './lib/dev-daemon.js'
import { havePostgres, startPostgresServer } from './lib/postgres-server.js'
import { durableWrites, reads } from './lib/fs-rounds.js'
import { printAffinity } from './lib/affinity.js'

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) || fallback : fallback
}
const rounds = arg('--rounds', 5)
/** Secrets written and read per round, by each measure. */
const count = arg('--count', 500)
/** Changes timed from one daemon to another. */
const changes = arg('--changes', 100)
const IN_FLIGHT = 32
const VALUE = Buffer.alloc(64, 'v')
const unlock = { kind: 'key-file', key: Buffer.alloc(32, 7) } as const
/** A change not seen on the other daemon by then counts as missed (and as this long). */
const GIVE_UP_MS = 5_000
const STOP_MS = 10_000

const now = () => process.hrtime.bigint()
const seconds = (start: bigint) => Number(now() - start) / 1e9
const msSince = (start: bigint) => Number(now() - start) / 1e6

/** The median (of an even count, the mean of the middle two). */
function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The nearest-rank percentile `p` (0-100). */
function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!
}

/** Undone last first, at the end, on failure, or on SIGINT/SIGTERM. */
const cleanups: (() => unknown)[] = []
let cleaning: Promise<void> | undefined
/** Runs the clean-ups once; a second caller waits for the first's. */
function cleanUp(): Promise<void> {
  return (cleaning ??= (async () => {
    for (const fn of cleanups.splice(0)) {
      try {
        await fn()
      } catch (e) {
        console.error('cleaning up:', e)
      }
    }
  })())
}

// ---- the core ----

type Store = 'sqlite' | 'pg'
const STORES: Store[] = ['sqlite', 'pg']

/** `fn` the first time only: called at the end of its part, and again by cleanUp. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined
  return () => (done ??= fn())
}

async function openCore(storage: Storage): Promise<{ core: Core; close: () => Promise<void> }> {
  const core = new Core({ storage })
  const close = once(() => core.close())
  cleanups.unshift(close)
  await core.initialize(unlock)
  await core.unseal(unlock)
  return { core, close }
}

async function sequentialWrites(core: Core, dir: string): Promise<number> {
  const start = now()
  for (let i = 0; i < count; i++) await core.write(`${dir}/b${i}`, VALUE)
  return count / seconds(start)
}

async function concurrentWrites(core: Core, dir: string): Promise<number> {
  let next = 0
  const start = now()
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < count) await core.write(`${dir}/c${next++}`, VALUE)
    }),
  )
  return count / seconds(start)
}

async function coreReads(core: Core, dir: string): Promise<number> {
  const start = now()
  for (let i = 0; i < count; i++)
    if ((await core.read(`${dir}/b${i}`)).value.length !== VALUE.length) throw new Error('short read')
  return count / seconds(start)
}

// ---- the daemons ----

interface Daemon {
  name: string
  mountpoint: string
  stop(): Promise<void>
}

/** Our environment without SECRETFS_*, so that only what a daemon is given chooses its store. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SECRETFS_')))
  return { ...env, ...extra }
}

function isMounted(dir: string): boolean {
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === dir)
}

function secretfsInit(args: string[], env: NodeJS.ProcessEnv): void {
  execFileSync(process.execPath, [cliPath, 'init', ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] })
}

/** `secretfs server` of the build, mounted on `work/name`; ready once it says how to stop it. */
async function startDaemon(
  work: string,
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  passphrase: string,
): Promise<Daemon> {
  const mountpoint = path.join(work, name)
  const argv = [
    ...['--pdeathsig', 'TERM', process.execPath, cliPath, 'server', '--mountpoint', mountpoint],
    ...['--passphrase-file', passphrase, '--address', path.join(work, `${name}.sock`), ...args],
  ]
  // setpriv: the daemon gets SIGTERM (and unmounts) if this process dies without cleaning up.
  const child = spawn('/usr/bin/setpriv', argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = once(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), STOP_MS)
      await exited
      clearTimeout(killer)
    }
    if (isMounted(mountpoint)) execFileSync('umount', ['-l', mountpoint])
  })
  cleanups.unshift(stop)
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (/stop it with/.test(out)) resolve()
    })
    void exited.then(() => reject(new Error(`the ${name} daemon exited before mounting:\n${err.trim()}`)))
  })
  child.stdout.resume()
  return { name, mountpoint, stop }
}

/** Reads `file` (undefined while it cannot be read). */
function tryRead(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

/**
 * `changes` values written through `a`'s mount, each polled for on `b`'s: the ms from a's write
 * returning (closed: committed) until b's mount shows it, and how long the writes took.
 */
async function propagation(a: Daemon, b: Daemon): Promise<{ delays: number[]; writes: number[]; missed: number }> {
  const file = (d: Daemon) => path.join(d.mountpoint, 'secret', 'propagation')
  const value = (i: number) => `change ${i}`.padEnd(VALUE.length, '.')
  const seen = async (v: string) => {
    const start = now()
    while (tryRead(file(b)) !== v) {
      if (msSince(start) > GIVE_UP_MS) return undefined
      await delay(2)
    }
    return msSince(start)
  }
  // B has the secret (and its page cache the old value) before the first timed change.
  fs.writeFileSync(file(a), value(0))
  if ((await seen(value(0))) === undefined) throw new Error(`b did not show a's first write within ${GIVE_UP_MS} ms`)
  const delays: number[] = []
  const writes: number[] = []
  let missed = 0
  for (let i = 1; i <= changes; i++) {
    const start = now()
    fs.writeFileSync(file(a), value(i))
    writes.push(msSince(start))
    const ms = await seen(value(i))
    if (ms === undefined) missed++
    delays.push(ms ?? GIVE_UP_MS)
    await delay(10)
  }
  return { delays, writes, missed }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: the daemons mount FUSE, postgres runs as its user')
  if (!havePostgres()) throw new Error('PostgreSQL 15 is not installed (scripts/setup.sh installs it)')
  printAffinity()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'secretfs-bench-'))
  cleanups.unshift(() => {
    // Never through a mount still there: what it holds is the daemon's store, not files here.
    if (!fs.readFileSync('/proc/mounts', 'utf8').includes(` ${work}/`))
      fs.rmSync(work, { recursive: true, force: true })
    else console.error(`left ${work}: something is still mounted in it`)
  })
  const pg = await startPostgresServer()
  cleanups.unshift(() => pg.stop())
  const durability = `fsync=${await pg.show('fsync')}, synchronous_commit=${await pg.show('synchronous_commit')}`

  // 1. The core.
  const opened = {
    sqlite: await openCore(new SqliteStorage(path.join(work, 'core.db'))),
    pg: await openCore(new PostgresStorage({ url: await pg.createDatabase('core') })),
  }
  const cores: Record<Store, Core> = { sqlite: opened.sqlite.core, pg: opened.pg.core }
  type CoreFigures = { write: number[]; concurrent: number[]; read: number[] }
  const coreFigures: Record<Store, CoreFigures> = {
    sqlite: { write: [], concurrent: [], read: [] },
    pg: { write: [], concurrent: [], read: [] },
  }
  const order = (round: number) => (round % 2 ? [...STORES].reverse() : STORES)
  for (const s of STORES) {
    // Warm-up, untimed: the JIT, the pool's connections.
    await sequentialWrites(cores[s], 'secret/warm')
    await coreReads(cores[s], 'secret/warm')
  }
  for (let round = 0; round < rounds; round++)
    for (const s of order(round)) {
      const f = coreFigures[s]
      f.write.push(await sequentialWrites(cores[s], `secret/r${round}`))
      f.concurrent.push(await concurrentWrites(cores[s], `secret/r${round}`))
      f.read.push(await coreReads(cores[s], `secret/r${round}`))
    }
  for (const s of STORES) await opened[s].close()

  // 2. The filesystem.
  const passphrase = path.join(work, 'passphrase')
  fs.writeFileSync(passphrase, 'a passphrase for the benchmark\n', { mode: 0o600 })
  const data = path.join(work, 'sqlite-data')
  const sqliteEnv = cleanEnv()
  const pgEnv = cleanEnv({ SECRETFS_STORAGE: await pg.createDatabase('shared') })
  secretfsInit(['--data', data, '--passphrase-file', passphrase], sqliteEnv)
  secretfsInit(['--passphrase-file', passphrase], pgEnv)
  const daemons: Record<Store, Daemon> = {
    sqlite: await startDaemon(work, 'sqlite', ['--data', data], sqliteEnv, passphrase),
    pg: await startDaemon(work, 'pg-a', [], pgEnv, passphrase),
  }
  type FsFigures = { write: number[]; read: number[] }
  const fsFigures: Record<Store, FsFigures> = { sqlite: { write: [], read: [] }, pg: { write: [], read: [] } }
  const secrets = (s: Store, dir: string) => path.join(daemons[s].mountpoint, 'secret', dir)
  for (const s of STORES) {
    durableWrites(secrets(s, 'warm'), count, VALUE)
    reads(secrets(s, 'warm'), count, VALUE.length)
  }
  for (let round = 0; round < rounds; round++)
    for (const s of order(round)) {
      const dir = secrets(s, `r${round}`)
      fsFigures[s].write.push(durableWrites(dir, count, VALUE))
      fsFigures[s].read.push(reads(dir, count, VALUE.length))
    }
  await daemons.sqlite.stop()

  // 3. A second daemon on the same database: a change on one until the other shows it.
  const b = await startDaemon(work, 'pg-b', [], pgEnv, passphrase)
  const p = await propagation(daemons.pg, b)

  const col = (x: string) => x.padStart(12)
  console.log(
    `median of ${rounds} rounds; ${count} secrets of ${VALUE.length} bytes a round; PostgreSQL 15 on loopback (${durability}); SQLite WAL, synchronous=FULL`,
  )
  console.log(''.padEnd(50) + col('SQLite') + col('PostgreSQL') + col('PG/SQLite'))
  const row = (what: string, f: Record<Store, number[]>) => {
    const sq = median(f.sqlite)
    const pq = median(f.pg)
    console.log(what.padEnd(50) + col(sq.toFixed(0)) + col(pq.toFixed(0)) + col(`${(pq / sq).toFixed(2)}x`))
  }
  const pick = <T>(x: Record<Store, T>, k: keyof T) => ({ sqlite: x.sqlite[k], pg: x.pg[k] }) as Record<Store, number[]>
  row('core: durable write, one at a time /s', pick(coreFigures, 'write'))
  row(`core: durable write, ${IN_FLIGHT} in flight /s`, pick(coreFigures, 'concurrent'))
  row('core: read /s', pick(coreFigures, 'read'))
  row('fs: durable write (create, write, fsync, close) /s', pick(fsFigures, 'write'))
  row('fs: read (open, read, close), first read /s', pick(fsFigures, 'read'))
  const ms = (x: number) => `${x.toFixed(1)} ms`
  const worst = percentile(p.delays, 100)
  console.log(
    `change on daemon A until daemon B shows it (PostgreSQL, ${changes} changes, polled every ~2 ms): ` +
      `p50 ${ms(percentile(p.delays, 50))}, p99 ${ms(percentile(p.delays, 99))}, max ${ms(worst)}` +
      `${p.missed ? `, ${p.missed} not seen within ${GIVE_UP_MS} ms` : ''}; ` +
      `aim <= 1 s ${worst <= 1000 && !p.missed ? 'met' : 'MISSED'} (A's write itself: p50 ${ms(percentile(p.writes, 50))})`,
  )
}

let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    interrupted = true
    console.error(`${signal}: cleaning up`)
    void cleanUp().finally(() => process.exit(1))
  })

try {
  await main()
} catch (e) {
  // Interrupted, what main was doing fails as its servers go: the clean-up's, not an error.
  if (!interrupted) throw e
} finally {
  await cleanUp()
}
