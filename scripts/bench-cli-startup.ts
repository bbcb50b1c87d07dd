// Benchmark: wall time of `secretfs read secret/x` (the built CLI, dist/) against a control API in
// this process, next to a yardstick (an empty `node` run) measured in the same run, and the same
// command through yargs (the slow path) for comparison. Run `npm run build` first, then:
//   node dist/scripts/bench-cli-startup.js [runs]
// Prints medians and ratios; the target is a median under 150 ms.

import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startApiServer } from '../src/api/api-server.js'
import { Core } from '../src/core/core.js'
import { silentLogger } from '../src/log.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const bin = [root, path.join(root, '..')].map((r) => path.join(r, 'dist/src/cli/main.js'))
const runs = Number(process.argv[2] ?? 30)

function time(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint()
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] })
    child.stdout.resume()
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${args.join(' ')} exited ${code}`))
      else resolve(Number(process.hrtime.bigint() - start) / 1e6)
    })
  })
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!

async function main(): Promise<void> {
  let main: string | undefined
  for (const b of bin) if (await fs.stat(b).catch(() => undefined)) main = main ?? b
  if (!main) throw new Error('no dist/src/cli/main.js: run `npm run build` first')
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sfs-bench-'))
  const core = await Core.dev()
  const server = await startApiServer(core, { socketPath: path.join(dir, 'run', 's.sock'), log: silentLogger })
  try {
    await core.write('secret/x', Buffer.from('{"value":"bench"}'))
    const env = { ...process.env, SECRETFS_ADDR: server.socketPath }
    const noCa: NodeJS.ProcessEnv = { ...env }
    delete noCa.NODE_EXTRA_CA_CERTS
    const cases: [string, string[], NodeJS.ProcessEnv][] = [
      ['yardstick: node -e 0', ['-e', '0'], env],
      ['secretfs read secret/x', [main, 'read', 'secret/x'], env],
      ['  same, through yargs', [main, 'read', 'secret/x'], { ...env, SECRETFS_CLI_NO_FAST_PATH: '1' }],
    ]
    if (process.env.NODE_EXTRA_CA_CERTS)
      cases.push(
        ['yardstick, no NODE_EXTRA_CA_CERTS', ['-e', '0'], noCa],
        ['secretfs read, no NODE_EXTRA_CA_CERTS', [main, 'read', 'secret/x'], noCa],
      )
    const results = new Map<string, number[]>(cases.map(([name]) => [name, []]))
    for (let i = 0; i < 3; i++) for (const [, args, e] of cases) await time(args, e) // warm the page cache
    // Interleaved, so that a busy moment hits every case alike.
    for (let i = 0; i < runs; i++) for (const [name, args, e] of cases) results.get(name)!.push(await time(args, e))
    const yard = median(results.get('yardstick: node -e 0')!)
    console.log(`${runs} runs each, interleaved; wall ms\n`)
    console.log('case'.padEnd(40) + 'median'.padStart(8) + 'p90'.padStart(8) + '  × yardstick')
    for (const [name, xs] of results)
      console.log(
        name.padEnd(40) +
          median(xs).toFixed(1).padStart(8) +
          p90(xs).toFixed(1).padStart(8) +
          `  ${(median(xs) / yard).toFixed(2)}`,
      )
    const read = median(results.get('secretfs read secret/x')!)
    console.log(
      `\nsecretfs read secret/x: median ${read.toFixed(0)} ms (target ≤ 150 ms): ${read <= 150 ? 'met' : 'NOT met'}`,
    )
  } finally {
    await server.close()
    await core.close()
    await fs.rm(dir, { recursive: true, force: true })
  }
}

await main()
