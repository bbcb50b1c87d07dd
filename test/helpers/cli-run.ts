// Test helper: runs the real secretfs CLI (sources or build, as test/helpers/daemon.ts decides)
// as a child process, asynchronously, with input and environment of the test's choosing.

import { spawn } from 'node:child_process'
import path from 'node:path'
import type { Core } from '../../src/core/core.js'
import { startTestApi } from './api-fixture.js'
import { cliCommand, type Scope } from './daemon.js'

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  stdoutBytes: Buffer
}

export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number } = {},
): Promise<CliResult> {
  const cli = cliCommand()
  return new Promise((resolve, reject) => {
    const child = spawn(cli.file, [...cli.args, ...args], {
      env: { ...process.env, ...cli.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    let err = ''
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', reject)
    // A CLI that hangs is killed, so that the test fails on what it printed instead of timing out.
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      const bytes = Buffer.concat(out)
      resolve({ code, stdout: bytes.toString(), stderr: err, stdoutBytes: bytes })
    })
    child.stdin.end(options.input)
  })
}

/** A control API in this process and a CLI runner pointed at it with SECRETFS_ADDR. */
export async function withApi(t: Scope, options: { core?: Core } = {}) {
  const api = await startTestApi(t, options)
  const cli = (args: string[], input?: string | Buffer, env: NodeJS.ProcessEnv = {}) =>
    runCli(args, { env: { SECRETFS_ADDR: api.socketPath, ...env }, ...(input !== undefined && { input }) })
  return { api, cli }
}

/**
 * An environment whose NODE_OPTIONS load a module hook that refuses to load yargs: a command run
 * with it shows that its fast path never loads the full argument parser.
 */
export function refusingYargs(t: { testdir(fixture: Record<string, string>): string }): NodeJS.ProcessEnv {
  const dir = t.testdir({
    'register.mjs': "import { register } from 'node:module'\nregister('./refuse-yargs.mjs', import.meta.url)\n",
    'refuse-yargs.mjs':
      'export async function resolve(specifier, context, next) {\n' +
      "  if (specifier === 'yargs' || specifier.startsWith('yargs/')) throw new Error('yargs was loaded')\n" +
      '  return next(specifier, context)\n}\n',
  })
  return { NODE_OPTIONS: `--import=${path.join(dir, 'register.mjs')}` }
}
