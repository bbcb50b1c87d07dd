// `secretfs exec [--prefix P] [--env NAME=PATH[#FIELD]]... [--keep-lease] [PATH...] -- CMD [ARGS...]`:
// runs CMD with secrets in its environment and waits for it, so that a leased credential lives as
// long as the program does. Parsed here, never by yargs, which drops `--` and costs start-up time.

import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { constants } from 'node:os'
import { parseArgs } from 'node:util'
import type { ApiClient } from '../../api/api-client.js'
import { awsShadowingVariables } from '../../format/credentials.js'
import { connect } from '../address.js'
import { CliError, ContextError, UsageError } from '../cli-error.js'
import { readSecret, secretValue, secretVariables, type SecretValue } from '../secret-env.js'

const USAGE = `Usage: secretfs exec [options] [PATH...] -- CMD [ARGS...]

Runs CMD with the secrets at PATH... in its environment, and waits for it. A secret whose value is
a JSON object gives each field as a variable (upper-cased; any character other than a letter,
digit or _ made _); an AWS credential gives AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN and AWS_CREDENTIAL_EXPIRATION. Every secret is read before CMD starts: if one
cannot be, CMD does not run. A leased secret (aws/creds/NAME) is revoked when CMD exits.

Exit status: CMD's (a CMD killed by a signal kills secretfs with it, or gives 128+N); 127 when
CMD is not found, 126 when it cannot be run, 1 when a secret cannot be read, 2 for a usage error.

Options:
  --prefix P               Put P in front of each field's name (not of --env names)
  --env NAME=PATH[#FIELD]  Set NAME to FIELD of PATH's secret (split at the last #); without
                           #FIELD, to a value that is not a JSON object, or an object's only field
  --keep-lease             Leave leases to expire by their TTL instead of revoking them
  --address SOCKET         The daemon's socket (default: $SECRETFS_ADDR, else where a daemon
                           started with defaults listens)
  -h, --help               Show this help
`
const HINT = 'See: secretfs exec --help'

interface EnvMapping {
  name: string
  path: string
  field?: string
}

export interface ExecArgs {
  paths: string[]
  env: EnvMapping[]
  prefix: string
  keepLease: boolean
  address?: string
  /** The program and its arguments: everything after the first `--`. */
  command: [string, ...string[]]
}

/** The command line after `exec`; undefined for --help. */
export function parseExecArgs(argv: string[]): ExecArgs | undefined {
  const dash = argv.indexOf('--')
  let parsed
  try {
    parsed = parseArgs({
      args: dash < 0 ? argv : argv.slice(0, dash),
      options: {
        prefix: { type: 'string' },
        env: { type: 'string', multiple: true },
        'keep-lease': { type: 'boolean' },
        address: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    })
  } catch (e) {
    // Node's advice to put such an argument after `--` would make it the program's.
    throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ''), HINT)
  }
  const { values, positionals } = parsed
  if (values.help) return undefined
  const [file, ...rest] = dash < 0 ? [] : argv.slice(dash + 1)
  if (file === undefined || file === '')
    throw new UsageError(
      dash < 0 ? 'exec needs -- before the program to run' : 'name the program to run after --',
      'Use: secretfs exec PATH... -- CMD [ARGS...]',
    )
  // Node gives an argument that is not UTF-8 with U+FFFD in place of what it could not decode, and
  // passes a program only UTF-8: such an argument would reach it altered.
  const altered = [file, ...rest].findIndex((a) => a.includes('\uFFFD'))
  if (altered >= 0)
    throw new UsageError(
      `${altered === 0 ? 'the program' : `argument ${altered} of the program`} is not UTF-8 text (or holds the character U+FFFD), which secretfs exec cannot pass on unchanged`,
      'Give it through a file or a variable the program reads',
    )
  const env = (values.env ?? []).map(envMapping)
  const paths = positionals.map(secretPath)
  if (paths.length === 0 && env.length === 0)
    throw new UsageError('name at least one secret: PATH, or --env NAME=PATH[#FIELD]', HINT)
  return {
    paths,
    env,
    prefix: values.prefix ?? '',
    keepLease: values['keep-lease'] ?? false,
    ...(values.address !== undefined && { address: values.address }),
    command: [file, ...rest],
  }
}

function envMapping(spec: string): EnvMapping {
  const eq = spec.indexOf('=')
  const name = spec.slice(0, eq)
  if (eq < 0) throw new UsageError(`--env ${spec}: give NAME=PATH or NAME=PATH#FIELD`, HINT)
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    throw new UsageError(
      `--env ${spec}: the variable's name must be letters, digits and _, and not start with a digit`,
      HINT,
    )
  const target = spec.slice(eq + 1)
  const hash = target.lastIndexOf('#')
  const path = secretPath(hash < 0 ? target : target.slice(0, hash))
  if (path === '') throw new UsageError(`--env ${spec}: name the secret after =`, HINT)
  if (hash < 0) return { name, path }
  const field = target.slice(hash + 1)
  if (field === '') throw new UsageError(`--env ${spec}: name the field after #, or leave out the #`, HINT)
  return { name, path, field }
}

const secretPath = (p: string) => p.replace(/^\/+/, '')

export async function run(argv: string[]): Promise<void> {
  const args = parseExecArgs(argv)
  if (!args) {
    process.stdout.write(USAGE)
    return
  }
  // From the start: a Ctrl-C while a credential is being made must not leave it unrevoked.
  const signals = new Signals()
  const client = connect(args.address)
  const leases: string[] = []
  let env: NodeJS.ProcessEnv
  try {
    const secrets = await readAll(client, [...new Set([...args.paths, ...args.env.map((m) => m.path)])], leases)
    if (signals.stopping) throw new Interrupted(signals.stopping)
    env = childEnv(args, secrets)
  } catch (e) {
    signals.stop()
    await revokeAll(client, leases)
    if (e instanceof Interrupted) return exitAs({ code: null, signal: e.signal })
    throw e
  }
  const outcome = await runChild(args.command, env, signals)
  signals.stop()
  if ('error' in outcome) {
    // Nothing ran, so nothing can need the leases, --keep-lease or not.
    await revokeAll(client, leases)
    throw spawnFailure(args.command[0], outcome.error)
  }
  if (!args.keepLease) await revokeAll(client, leases)
  exitAs(outcome)
}

class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(signal)
  }
}

/** Reads every secret (at once); the first failure is thrown once all are done, `leases` filled. */
async function readAll(client: ApiClient, paths: string[], leases: string[]): Promise<Map<string, SecretValue>> {
  const results = await Promise.allSettled(paths.map((p) => readSecret(client, p)))
  const secrets = new Map<string, SecretValue>()
  results.forEach((r, i) => {
    if (r.status !== 'fulfilled') return
    secrets.set(paths[i]!, r.value)
    if (r.value.leaseId !== '') leases.push(r.value.leaseId)
  })
  const failed = results.find((r) => r.status === 'rejected')
  if (failed) throw failed.reason
  return secrets
}

/** The parent's environment with the secrets' variables; two sources of one variable are refused. */
function childEnv(args: ExecArgs, secrets: Map<string, SecretValue>): NodeJS.ProcessEnv {
  const source = new Map<string, string>()
  const values = new Map<string, string | null>()
  const add = (name: string, value: string | null, from: string) => {
    const other = source.get(name)
    if (other !== undefined)
      throw new CliError(
        `${other} and ${from} both set the variable ${name}`,
        'Give one of them another name with --env NAME=PATH#FIELD',
      )
    if (value?.includes('\0'))
      throw new CliError(`the value for ${name} (from ${from}) holds a NUL character, which no variable can hold`)
    source.set(name, from)
    values.set(name, value)
  }
  for (const path of args.paths)
    for (const [name, value] of secretVariables(secrets.get(path)!, args.prefix)) add(name, value, path)
  for (const m of args.env) add(m.name, secretValue(secrets.get(m.path)!, m.field), `--env ${m.name}`)
  const env = { ...process.env }
  const given = [...values].filter((v): v is [string, string] => v[1] !== null)
  for (const name of awsShadowingVariables(given)) delete env[name]
  // A field that is null (an IAM user's security_token) sets nothing, and hides an inherited value.
  for (const [name, value] of values) {
    if (value === null) delete env[name]
    else env[name] = value
  }
  return env
}

type Outcome = { code: number | null; signal: NodeJS.Signals | null } | { error: NodeJS.ErrnoException }

/** Runs the program on secretfs's own stdin, stdout and stderr; resolves when it exits or cannot start. */
function runChild(command: ExecArgs['command'], env: NodeJS.ProcessEnv, signals: Signals): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { env, stdio: 'inherit' })
    signals.child = child
    child.on('error', (error) => {
      if (child.pid === undefined) resolve({ error })
    })
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
}

/** What a shell says (and answers) for a program it cannot run. */
function spawnFailure(file: string, e: NodeJS.ErrnoException): CliError {
  if (e.code === 'ENOENT')
    return new CliError(`${file}: command not found`, 'Check its name, or give its full path.', 127)
  if (e.code === 'EACCES') return new CliError(`${file}: permission denied`, undefined, 126)
  return new CliError(`cannot run ${file}: ${e.message}`, undefined, 126)
}

/** Revokes each lease; a failure is reported and changes no exit status (see the README). */
async function revokeAll(client: ApiClient, leases: string[]): Promise<void> {
  await Promise.all(
    leases.map(async (id) => {
      try {
        await client.revokeLease(id)
      } catch (e) {
        const { reportError } = await import('../report-error.js')
        reportError(new ContextError(`revoking the lease ${id}`, e))
        process.stderr.write(`The lease stays until it expires; revoke it with: secretfs revoke ${id}\n`)
      }
    }),
  )
}

// Death by these is the default, without a core dump, so secretfs can die of the program's signal
// itself: a calling shell then sees what it would have without secretfs (a script stops on
// Ctrl-C). Node keeps SIGUSR1 for its inspector and ignores SIGPIPE, and a core-dumping signal
// would dump secretfs's memory: those give 128+N, as a shell's status says.
const RAISED = new Set<NodeJS.Signals>(['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGKILL', 'SIGUSR2', 'SIGALRM'])

function exitAs(outcome: { code: number | null; signal: NodeJS.Signals | null }): void {
  const { code, signal } = outcome
  if (signal === null) {
    process.exitCode = code ?? 1
    return
  }
  process.exitCode = 128 + constants.signals[signal]
  if (RAISED.has(signal)) process.kill(process.pid, signal)
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH']
const STOPPING = new Set<NodeJS.Signals>(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'])
/** Signals a terminal sends to its whole foreground process group, the program included. */
const FROM_TERMINAL = new Set<NodeJS.Signals>(['SIGINT', 'SIGQUIT', 'SIGWINCH'])

/**
 * Holds the forwarded signals from the start: before the program runs, a stopping one is kept
 * (the reads finish, their leases are revoked, then secretfs dies of it); while it runs, each is
 * passed on, except a terminal's, which the program (in secretfs's process group) already got:
 * sent twice, a Ctrl-C reads as "force quit" to many programs.
 */
class Signals {
  child?: ChildProcess
  stopping?: NodeJS.Signals
  readonly #handler = (signal: NodeJS.Signals) => {
    if (!this.child) {
      if (STOPPING.has(signal)) this.stopping ??= signal
      return
    }
    if (FROM_TERMINAL.has(signal) && inTerminalForeground()) return
    this.child.kill(signal)
  }

  constructor() {
    for (const s of FORWARDED) process.on(s, this.#handler)
  }

  /** Back to the defaults: a Ctrl-C while the leases are revoked stops secretfs. */
  stop(): void {
    for (const s of FORWARDED) process.off(s, this.#handler)
  }
}

/** Whether this process group is its terminal's foreground group (pgrp = tpgid in /proc/self/stat). */
function inTerminalForeground(): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8')
    // After the command's name, which may hold spaces and parentheses: state ppid pgrp session tty_nr tpgid.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return fields[2] === fields[5]
  } catch {
    return false
  }
}
