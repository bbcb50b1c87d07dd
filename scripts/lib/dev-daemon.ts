// For benchmarks: a dev daemon (`secretfs server --dev`) of the build, mounted in a temporary
// directory, and the CLI pointed at it. Stopped (and unmounted) by `stop`.
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const here = path.dirname(fileURLToPath(import.meta.url))
export const repo = import.meta.url.endsWith('.ts') ? path.resolve(here, '../..') : path.resolve(here, '../../..')
export const cliPath = path.join(repo, 'dist/src/cli/main.js')
const run = promisify(execFile)

export interface DevDaemon {
  mountpoint: string
  env: NodeJS.ProcessEnv
  /** Runs the secretfs CLI against this daemon. */
  secretfs(...args: string[]): Promise<{ stdout: string; stderr: string }>
  stop(): Promise<void>
}

export async function startDevDaemon(): Promise<DevDaemon> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secretfs-bench-'))
  const mountpoint = path.join(dir, 'mnt')
  const env = { ...process.env, SECRETFS_ADDR: path.join(dir, 'api', 'secretfs.sock') }
  const daemon = spawn(process.execPath, [cliPath, 'server', '--dev', '--mountpoint', mountpoint], {
    env,
    stdio: 'pipe',
  })
  let err = ''
  daemon.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)))
  await new Promise<void>((resolve, reject) => {
    let out = ''
    daemon.stdout.on('data', (d: Buffer) => (out += d.toString()) && /stop it with/.test(out) && resolve())
    daemon.once('exit', () => {
      fs.rmSync(dir, { recursive: true, force: true })
      reject(new Error(`the daemon exited before mounting: ${err.trim()}`))
    })
  })
  return {
    mountpoint,
    env,
    secretfs: (...args) => run(process.execPath, [cliPath, ...args], { env }),
    async stop() {
      await new Promise((resolve) => {
        daemon.once('exit', resolve)
        daemon.kill('SIGTERM')
      })
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
export const msSince = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6
