// Benchmark: start-up of `secretfs exec secret/x -- true` (the built CLI, dist/) against a dev
// daemon, next to `env true` (what exec adds to running a program) and `secretfs read secret/x`
// (the CLI's own start-up and one read), with an empty node run as a yardstick. Run `npm run build` first, then:
//   node dist/scripts/bench-exec.js [runs]
// Prints medians (wall ms, interleaved runs) and ratios as JSON.

import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const runs = Number(process.argv[2] ?? 30)

function time(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint()
    const child = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'inherit'] })
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${file} ${args.join(' ')} exited ${code}`))
      else resolve(Number(process.hrtime.bigint() - start) / 1e6)
    })
  })
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function main(): Promise<void> {
  let main: string | undefined
  for (const r of [root, path.join(root, '..')]) {
    const b = path.join(r, 'dist/src/cli/main.js')
    if (!main && (await fs.stat(b).catch(() => undefined))) main = b
  }
  if (!main) throw new Error('no dist/src/cli/main.js: run `npm run build` first')
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sfs-bench-exec-'))
  const env = { ...process.env, SECRETFS_ADDR: path.join(dir, 'run', 'secretfs.sock') }
  const daemon = spawn(process.execPath, [main, 'server', '--dev'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    let out = ''
    daemon.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const deadline = Date.now() + 30_000
    while (!/stop it with/.test(out)) {
      if (daemon.exitCode !== null) throw new Error('the dev daemon exited')
      if (Date.now() > deadline) throw new Error('the dev daemon did not start within 30 s')
      await new Promise((r) => setTimeout(r, 50))
    }
    await time(process.execPath, [main, 'write', 'secret/x', 'user_name=bench', 'password=p'], env)
    const cases: [string, string, string[]][] = [
      ['env true', 'env', ['true']],
      ['yardstick: node -e 0', process.execPath, ['-e', '0']],
      ['secretfs read secret/x', process.execPath, [main, 'read', 'secret/x']],
      ['secretfs exec secret/x -- true', process.execPath, [main, 'exec', 'secret/x', '--', 'true']],
    ]
    const results = new Map<string, number[]>(cases.map(([name]) => [name, []]))
    for (let i = 0; i < 3; i++) for (const [, file, args] of cases) await time(file, args, env) // warm caches
    // Interleaved, so that a busy moment hits every case alike.
    for (let i = 0; i < runs; i++)
      for (const [name, file, args] of cases) results.get(name)!.push(await time(file, args, env))
    const m = Object.fromEntries([...results].map(([name, xs]) => [name, Number(median(xs).toFixed(1))]))
    const exec = m['secretfs exec secret/x -- true']!
    console.log(
      JSON.stringify(
        {
          runs,
          median_ms: m,
          exec_over_env_true: Number((exec / m['env true']!).toFixed(2)),
          exec_over_read: Number((exec / m['secretfs read secret/x']!).toFixed(2)),
          exec_minus_read_ms: Number((exec - m['secretfs read secret/x']!).toFixed(1)),
        },
        null,
        2,
      ),
    )
  } finally {
    daemon.kill('SIGTERM')
    await new Promise((r) => daemon.once('exit', r))
    await fs.rm(dir, { recursive: true, force: true })
  }
}

await main()
