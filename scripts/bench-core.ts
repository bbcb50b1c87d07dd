// Benchmark of the core over the SQLite store: 64-byte reads, durable writes, and opening a store
// of 100,000 secrets. Run: npm run build && node dist/scripts/bench-core.js [--secrets N]
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Core } from '../src/core/core.js'
import { SqliteStorage } from '../src/storage/sqlite-storage.js'

const unlock = { kind: 'key-file', key: Buffer.alloc(32, 42) } as const

async function open(file: string): Promise<Core> {
  const core = new Core({ storage: new SqliteStorage(file) })
  if (!(await core.initialized())) await core.initialize(unlock)
  await core.unseal(unlock)
  return core
}

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9

async function main(): Promise<void> {
  if (process.argv[2] === '--open-only') {
    const start = process.hrtime.bigint()
    const core = await open(process.argv[3]!)
    const elapsed = seconds(start)
    await core.read('secret/bulk/0/0') // one request, so the store is really in use
    console.log(JSON.stringify({ elapsed, rss: process.memoryUsage().rss }))
    await core.close()
    return
  }
  const count = Number(process.argv[process.argv.indexOf('--secrets') + 1]) || 100_000
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secretfs-bench-'))
  const file = path.join(dir, 'store.db')
  try {
    const core = await open(file)
    const value = Buffer.alloc(64, 'x')
    await core.write('secret/bench/value', value)

    let n = 100_000
    let start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) await core.read('secret/bench/value')
    const reads = n / seconds(start)

    n = 2_000
    start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) await core.write(`secret/bench/w${i}`, value)
    const writes = n / seconds(start)

    // Yardstick: the same machine's raw durable commit rate, a bare SQLite file in WAL mode.
    const raw = new Database(path.join(dir, 'raw.db'))
    raw.pragma('journal_mode = WAL')
    raw.pragma('synchronous = FULL')
    raw.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID')
    const insert = raw.prepare('INSERT INTO kv VALUES (?, ?)')
    start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) insert.run(`k${i}`, value)
    const rawWrites = n / seconds(start)
    raw.close()

    n = 10_000
    const inFlight = 32
    start = process.hrtime.bigint()
    for (let i = 0; i < n; i += inFlight)
      await Promise.all(Array.from({ length: inFlight }, (_, j) => core.write(`secret/bench/c${i + j}`, value)))
    const concurrentWrites = n / seconds(start)

    start = process.hrtime.bigint()
    for (let i = 0; i < count; i += 1000)
      await Promise.all(
        Array.from({ length: Math.min(1000, count - i) }, (_, j) =>
          core.write(`secret/bulk/${Math.floor((i + j) / 1000)}/${(i + j) % 1000}`, value),
        ),
      )
    const fill = seconds(start)
    await core.close()

    const self = fileURLToPath(import.meta.url)
    const child = spawnSync(process.execPath, [...process.execArgv, self, '--open-only', file], { encoding: 'utf8' })
    if (child.status !== 0) throw new Error(child.stderr)
    const opened = JSON.parse(child.stdout) as { elapsed: number; rss: number }

    const row = (what: string, value: string, target: string) =>
      console.log(`${what.padEnd(46)}${value.padStart(14)}   ${target}`)
    row('read, 64-byte secret, sequential', `${Math.round(reads)}/s`, 'aim >= 50,000/s')
    row('durable write, 64 bytes, sequential', `${Math.round(writes)}/s`, 'aim >= 2,000/s')
    row(
      '  yardstick: bare SQLite durable insert',
      `${Math.round(rawWrites)}/s`,
      `secretfs is ${(writes / rawWrites).toFixed(2)}x`,
    )
    row(`durable write, 64 bytes, ${inFlight} in flight`, `${Math.round(concurrentWrites)}/s`, '')
    row(`store of ${count} secrets: filled in`, `${fill.toFixed(1)} s`, '')
    row(`  open and unseal (key file)`, `${opened.elapsed.toFixed(3)} s`, 'aim <= 2 s')
    row(`  process RSS after open`, `${(opened.rss / 2 ** 20).toFixed(0)} MB`, 'aim <= 200 MB')
    row(`  store file size`, `${(fs.statSync(file).size / 2 ** 20).toFixed(0)} MB`, '')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

await main()
