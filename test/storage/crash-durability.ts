// d: kill -9 in the middle of 1,000 writes; every acknowledged write survives intact.
import t from 'tap'
import path from 'node:path'
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { Core } from '../../src/core/core.js'
import { SqliteStorage } from '../../src/storage/sqlite-storage.js'

const fixture = fileURLToPath(new URL('../fixtures/durable-writer.ts', import.meta.url))

t.test('acknowledged writes survive SIGKILL', async (t) => {
  const file = path.join(t.testdir(), 'store.db')
  const child = spawn(process.execPath, [...process.execArgv, fixture, file, '1000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => void child.kill('SIGKILL'))
  let acked = -1
  let buffered = ''
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString()
    const lines = buffered.split('\n')
    buffered = lines.pop()!
    for (const line of lines) {
      const m = /^ack (\d+)$/.exec(line)
      if (m) acked = Number(m[1])
      if (acked === 300) child.kill('SIGKILL')
    }
  })
  t.equal(await exited, 'SIGKILL', 'the writer was killed, not finished')
  t.ok(acked >= 300 && acked < 999, `killed mid-run after ${acked + 1} acknowledged writes`)

  const core = new Core({ storage: new SqliteStorage(file) })
  t.teardown(() => core.close())
  await core.unseal({ kind: 'key-file', key: Buffer.alloc(32, 9) })
  let intact = 0
  for (let i = 0; i <= acked; i++) {
    const { value } = await core.read(`secret/crash/${i}`)
    if (Buffer.from(value).toString() === `value-${i}-`.repeat(8)) intact++
  }
  t.equal(intact, acked + 1, 'every acknowledged write reads back intact')
  const names = await core.list('secret/crash/')
  for (const n of names) await core.read(`secret/crash/${n}`) // nothing fails to decrypt
  t.ok(names.length >= acked + 1 && names.length <= acked + 2, 'at most the one write in flight is extra')
})

// kill -9 cannot show that a write reached the disk (the page cache outlives the process), so the
// writer's system calls are watched instead: before each write is acknowledged, the WAL that holds
// it has been synced, as synchronous=FULL does and NORMAL or OFF do not.
t.test('each write is synced to disk before it is acknowledged', async (t) => {
  const dir = t.testdir()
  const file = path.join(dir, 'store.db')
  const traceFile = path.join(dir, 'trace')
  const writes = 20
  // Only the main thread is traced (no -f): it runs SQLite's commits and prints the acknowledgements.
  const traced = [process.execPath, ...process.execArgv, fixture, file, String(writes)]
  const child = spawn('strace', ['-qq', '-y', '-e', 'trace=fsync,fdatasync,write', '-o', traceFile, ...traced], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout.resume()
  t.teardown(() => void child.kill('SIGKILL'))
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(-1))
    child.on('exit', resolve)
  })
  t.equal(code, 0, `the traced writer finished (strace is installed by scripts/setup.sh): ${stderr}`)

  const trace = await fs.readFile(traceFile, 'utf8')
  const walSync = new RegExp(`^f(?:data)?sync\\(\\d+<${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-wal>\\) += 0$`)
  let synced = false
  let ready = false
  const acknowledged: number[] = []
  const unsynced: number[] = []
  for (const line of trace.split('\n')) {
    if (walSync.test(line)) synced = true
    if (/^write\(1<[^>]*>, "ready\\n"/.test(line)) [ready, synced] = [true, false]
    const ack = /^write\(1<[^>]*>, "ack (\d+)\\n"/.exec(line)
    if (!ready || !ack) continue
    acknowledged.push(Number(ack[1]))
    if (!synced) unsynced.push(Number(ack[1]))
    synced = false
  }
  t.same(acknowledged, [...Array(writes).keys()], 'every write was acknowledged, in order')
  t.same(unsynced, [], 'no write was acknowledged before the WAL holding it was synced')
})
