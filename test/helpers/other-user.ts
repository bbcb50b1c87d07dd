// Test helper: real other users. Runs the secretfs CLI, or a listener that records what it
// receives, as a uid of the test's choosing (setpriv; the tests run as root), with an environment
// given in full, so that nothing of the test's own (SECRETFS_ADDR, XDG_RUNTIME_DIR) leaks in.

import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { cliCommand, type Scope } from './daemon.js'
import type { CliResult } from './cli-run.js'

/**
 * setpriv's arguments to run `file args` as `uid` with exactly `env`: `env -i` drops what the
 * test runner adds to a child's environment (its process-info hooks, which another uid cannot
 * write).
 */
export function asUser(uid: number, env: NodeJS.ProcessEnv, file: string, args: string[]): string[] {
  const vars = Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]))
  return [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'env', '-i', ...vars, file, ...args]
}

/** A bare environment: PATH, and HOME when given; nothing else unless added. */
export function bareEnv(home?: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(home !== undefined && { HOME: home }), ...extra }
}

/** Runs `file args` as `uid` with exactly `env`; never throws on failure. */
export function runAs(
  uid: number,
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: string,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', asUser(uid, env, file, args), { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      const bytes = Buffer.concat(out)
      resolve({ code, stdout: bytes.toString(), stderr: err, stdoutBytes: bytes })
    })
    child.stdin.end(input)
  })
}

/** Runs the secretfs CLI (sources or build, as daemon.ts decides) as `uid` with exactly `env`. */
export function runCliAs(uid: number, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<CliResult> {
  const cli = cliCommand()
  return runAs(uid, cli.file, [...cli.args, ...args], { ...cli.env, ...env }, input)
}

/**
 * Fails early, with the reason, when `uid` cannot run the CLI: the checkout (dist/, src/,
 * node_modules) must be readable by every user for these tests.
 */
export async function checkCliRunsAs(t: Scope & { fail(m: string): void }, uid: number): Promise<boolean> {
  const r = await runCliAs(uid, ['--version'], bareEnv())
  if (r.code === 0) return true
  t.fail(`uid ${uid} cannot run the CLI; the checkout must be readable by all users:\n${r.stderr}`)
  return false
}

/** A new directory owned by `uid` with `mode`, under the system temp dir; removed in teardown. */
export async function dirOf(t: Scope, uid: number, mode = 0o700, prefix = 'sfs-user-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  await fs.chown(dir, uid, uid)
  await fs.chmod(dir, mode)
  return dir
}

/** A file owned by `uid` with `mode`. */
export async function fileOf(file: string, uid: number, content: string | Buffer, mode = 0o600): Promise<string> {
  await fs.writeFile(file, content)
  await fs.chown(file, uid, uid)
  await fs.chmod(file, mode)
  return file
}

// Answers like a sealed daemon (so that a client goes on to send a passphrase) and prints every
// byte it receives, base64, one line per chunk; a connection that sends MARK gets "mark" printed,
// which tells the test that everything received before it has been printed.
const LISTENER = `
const net = require('net'), fs = require('fs')
const [socketPath, dirMode] = process.argv.slice(1)
const dir = require('path').dirname(socketPath)
if (dirMode) { fs.mkdirSync(dir, { recursive: true }); fs.chmodSync(dir, parseInt(dirMode, 8)) }
const reply = (body) => 'HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: ' +
  Buffer.byteLength(body) + '\\r\\nConnection: close\\r\\n\\r\\n' + body
const server = net.createServer((c) => {
  let got = Buffer.alloc(0)
  c.on('data', (d) => {
    if (got.length === 0 && d.toString() === 'MARK') { console.log('mark'); c.end(); return }
    console.log('data ' + d.toString('base64'))
    got = Buffer.concat([got, d])
    const text = got.toString('latin1'), end = text.indexOf('\\r\\n\\r\\n')
    const length = Number((/content-length: *(\\d+)/i.exec(text) || [])[1] || 0)
    if (end < 0 || got.length < end + 4 + length) return
    c.end(reply(text.includes('seal-status') ? '{"initialized":true,"sealed":true}' : '{"initialized":true,"sealed":false}'))
  })
  c.on('error', () => {})
})
server.listen(socketPath, () => { fs.chmodSync(socketPath, 0o777); console.log('ready') })
`

export interface Listener {
  socketPath: string
  /** Every byte received so far by the listener (after a round trip that flushes its output). */
  received(): Promise<Buffer>
  child: ChildProcess
}

/**
 * A listener on `socketPath`, run as `uid`; with `dirMode`, it first creates the socket's directory
 * and gives it that mode (as an attacker would). Stopped in teardown.
 */
export async function startListener(t: Scope, uid: number, socketPath: string, dirMode?: number): Promise<Listener> {
  const args = ['-e', LISTENER, socketPath, dirMode === undefined ? '' : dirMode.toString(8)]
  const child = spawn('setpriv', asUser(uid, bareEnv(), process.execPath, args), {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let out = ''
  let err = ''
  const waiters: (() => void)[] = []
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
    for (const w of waiters.splice(0)) w()
  })
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const until = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(out)) resolve()
        else if (child.exitCode !== null || child.signalCode !== null)
          reject(new Error(`the listener exited; stderr:\n${err}`))
        else waiters.push(check)
      }
      child.once('exit', check)
      check()
    })
  await until(/^ready$/m)
  let marks = 0
  return {
    socketPath,
    child,
    async received() {
      // The mark goes through the listener's own socket as root, which may always connect.
      const { connect } = await import('node:net')
      const c = connect(socketPath)
      c.on('error', () => {})
      c.end('MARK')
      marks++
      const n = marks
      await until(new RegExp(`(^mark$[^]*){${n}}`, 'm'))
      const chunks = [...out.matchAll(/^data (\S+)$/gm)].map((m) => Buffer.from(m[1]!, 'base64'))
      return Buffer.concat(chunks)
    },
  }
}
