// d: kill -9 in the middle of 1,000 writes; every acknowledged write survives intact.
import t from 'tap'
import path from 'node:path'
import { spawn } from 'node:child_process'
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
