// Test helper: starts a secretfs daemon on its own temporary mountpoint, as a child process
// running the TypeScript sources (or the build), or mounts a Core inside the test process, and
// always unmounts in teardown, even when the test fails. Also runs shell tools asynchronously:
// nothing may touch a mount synchronously from the process that serves it.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Core } from '../../src/core/core.js'
import { loadFuse } from '../../src/daemon/fuse-library.js'
import { forceUnmount, isMounted } from '../../src/daemon/mountpoint.js'
import type { FsMount, FuseBindingName } from '../../src/fs/fuse-mount.js'
import { SecretFs, type SecretFsOptions } from '../../src/fs/secret-fs.js'
import { silentLogger, type Logger } from '../../src/log.js'

/** What the helper needs of a tap test. */
export interface Scope {
  teardown(fn: () => unknown): void
}

const root = fileURLToPath(new URL('../../', import.meta.url))
const tsLoader = path.join(root, 'node_modules/@tapjs/typescript/dist/esm/import.mjs')

/** The command that runs the secretfs CLI: the build when `built`, else the sources. */
export function cliCommand(built = process.env.SECRETFS_TEST_BUILT === '1'): {
  file: string
  args: string[]
  env: NodeJS.ProcessEnv
} {
  if (built) return { file: process.execPath, args: [path.join(root, 'dist/src/cli/main.js')], env: {} }
  return {
    file: process.execPath,
    args: [`--import=${tsLoader}`, path.join(root, 'src/cli/main.ts')],
    env: { TS_NODE_TRANSPILE_ONLY: '1' },
  }
}

/** A fresh directory under the system temp dir, removed in teardown (after any unmount). */
export async function tempDir(t: Scope, prefix = 'secretfs-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix))
  t.teardown(async () => {
    // Never recurse into a mount: if one is still there, leave the directory for inspection.
    for (const p of await listMountsUnder(dir)) await forceUnmount(p).catch(() => {})
    if ((await listMountsUnder(dir)).length === 0) await fs.rm(dir, { recursive: true, force: true })
  })
  return dir
}

async function listMountsUnder(dir: string): Promise<string[]> {
  const text = await fs.readFile('/proc/mounts', 'utf8')
  return text
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(dir + '/')))
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface DaemonProcess {
  readonly mountpoint: string
  /** The control API's socket (SECRETFS_ADDR for the CLI). */
  readonly socketPath: string
  readonly child: ChildProcess
  readonly exited: Promise<Exit>
  stdout(): string
  stderr(): string
  /** Sends `signal` (SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>
}

export interface DaemonOptions {
  /** Arguments after `server`; `--mountpoint` is added unless `mountpoint` is false. Default: ['--dev']. */
  args?: string[]
  /** The mountpoint (default: a new temporary directory + '/mnt'); false to pass none. */
  mountpoint?: string | false
  env?: NodeJS.ProcessEnv
  built?: boolean
  /** A command that runs it, such as setpriv (as another user) or prlimit (with other limits). */
  runThrough?: string[]
  /** Wait until it has mounted (default), or only until it has exited. */
  wait?: 'mounted' | 'exit'
  timeoutMs?: number
}

/**
 * A daemon with a real store: the `server` arguments (a data directory and a key file of 32
 * `keyByte`s, mode 0600) and a mountpoint, in a fresh directory. Start it, stop it, start it again.
 */
export async function realStore(t: Scope, keyByte = 1): Promise<{ dir: string; args: string[]; mountpoint: string }> {
  const dir = await tempDir(t)
  const key = path.join(dir, 'key')
  await fs.writeFile(key, Buffer.alloc(32, keyByte), { mode: 0o600 })
  return { dir, args: ['--data', path.join(dir, 'data'), '--key-file', key], mountpoint: path.join(dir, 'mnt') }
}

/** Starts `secretfs server` as a child process. Teardown stops it and unmounts. */
export async function startDaemon(t: Scope, options: DaemonOptions = {}): Promise<DaemonProcess> {
  const mountpoint = options.mountpoint === false ? '' : (options.mountpoint ?? path.join(await tempDir(t), 'mnt'))
  const cli = cliCommand(options.built)
  const args = [...cli.args, 'server', ...(options.args ?? ['--dev'])]
  if (mountpoint) args.push('--mountpoint', mountpoint)
  // Each daemon gets its own socket, so that tests never meet at the default one.
  const socketPath = options.env?.SECRETFS_ADDR ?? path.join(await tempDir(t, 'secretfs-sock-'), 'api', 'secretfs.sock')
  // A daemon of a test that is killed (a tap timeout) gets SIGTERM, so it unmounts; one run as
  // another user is stopped by teardown only (a change of uid clears the parent-death signal).
  const through = options.runThrough ?? ['/usr/bin/setpriv', '--pdeathsig', 'TERM']
  const [file, ...argv] = [...through, cli.file, ...args]
  const child = spawn(file!, argv, {
    env: { ...process.env, ...cli.env, SECRETFS_ADDR: socketPath, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<Exit>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const alive = () => child.exitCode === null && child.signalCode === null
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> => {
    if (alive()) child.kill(signal)
    return exited
  }
  t.teardown(async () => {
    if (alive()) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
    if (mountpoint && (await isMounted(mountpoint))) await forceUnmount(mountpoint)
  })
  const daemon: DaemonProcess = { mountpoint, socketPath, child, exited, stdout: () => out, stderr: () => err, stop }
  const timeoutMs = options.timeoutMs ?? 60_000
  if (options.wait === 'exit') {
    await withTimeout(exited, timeoutMs, () => `the daemon did not exit; stderr:\n${err}`)
    return daemon
  }
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      const check = () => {
        // The last line of the start-up message, printed once every service is up.
        if (/stop it with/.test(out)) resolve()
      }
      child.stdout!.on('data', check)
      void exited.then((e) =>
        reject(new Error(`the daemon exited (${e.code ?? e.signal}) before mounting; stderr:\n${err}`)),
      )
    }),
    timeoutMs,
    () => `the daemon did not mount within ${timeoutMs} ms; stderr:\n${err}`,
  )
  return daemon
}

/**
 * The FUSE binding the tests mount with: $SECRETFS_FUSE (which daemons they start read too), else
 * the default. A test file that sets it before importing another runs that one on the other binding.
 */
export function testBinding(): FuseBindingName {
  return process.env.SECRETFS_FUSE === 'fuse-native' ? 'fuse-native' : 'lowlevel'
}

/**
 * Mounts `core` in this process (for tests that use the core directly); unmounted in teardown.
 */
export async function mountInProcess(
  t: Scope,
  core: Core,
  log: Logger = silentLogger,
  limits: Pick<SecretFsOptions, 'maxOpenHandles' | 'maxOpenBytes'> = {},
): Promise<FsMount> {
  const mountpoint = path.join(await tempDir(t), 'mnt')
  await fs.mkdir(mountpoint, { mode: 0o700 })
  const fuse = await loadFuse(testBinding())
  const mount = await fuse.mount(mountpoint, new SecretFs({ core, log, ...limits }), log)
  t.teardown(async () => {
    await withTimeout(mount.unmount(), 10_000, () => 'unmount timed out').catch(() => forceUnmount(mountpoint))
    if (await isMounted(mountpoint)) await forceUnmount(mountpoint)
  })
  return mount
}

export interface Result {
  /** The exit code; 124 (as timeout(1) says) when the command was killed for running too long. */
  code: number
  stdout: string
  stderr: string
  /** The command hung past its time limit: never to be taken for a refusal. */
  timedOut: boolean
}

/** What sh() answers for a command that succeeded and printed nothing (a setup step, say). */
export const quiet: Result = { code: 0, stdout: '', stderr: '', timedOut: false }

/**
 * Runs a shell command (asynchronously, never blocking this process). Never throws on failure.
 * The shell itself changes to `cwd`: a spawn's own chdir runs before this process gets control
 * back, so one into a mount served by this process would deadlock. A command that runs past
 * `timeoutMs` is killed and answers code 124 with `timedOut` set and a line on stderr saying so.
 */
export function sh(
  command: string,
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<Result> {
  const script = options.cwd === undefined ? command : `cd -- "$SECRETFS_TEST_CWD" || exit 125\n${command}`
  const timeoutMs = options.timeoutMs ?? 30_000
  return new Promise((resolve) => {
    const child = execFile(
      '/bin/sh',
      ['-c', script],
      {
        env: { ...process.env, ...options.env, ...(options.cwd !== undefined && { SECRETFS_TEST_CWD: options.cwd }) },
        timeout: timeoutMs,
        maxBuffer: 64 << 20,
      },
      (error, stdout, stderr) => {
        // execFile kills the child for its timeout or for too much output; only the first is a hang.
        if (error?.killed && error.code !== 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
          const note = `sh(): killed after ${timeoutMs} ms: ${command}\n`
          resolve({ code: 124, stdout, stderr: stderr + note, timedOut: true })
          return
        }
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
        resolve({ code, stdout, stderr, timedOut: false })
      },
    )
    if (options.input !== undefined) child.stdin!.end(options.input)
    else child.stdin?.end()
  })
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message())), ms))),
  ]).finally(() => clearTimeout(timer))
}
