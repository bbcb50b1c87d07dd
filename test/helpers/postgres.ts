// Test helper: a real PostgreSQL 15 server of the test's own, in a temporary data directory, on a
// free loopback port, with password (SCRAM) authentication enforced on every connection, stopped
// and deleted in teardown. The tests run as root, which initdb and postgres refuse: both run as the
// `postgres` user through setpriv. SQL goes through the real psql, over TCP, as a user would.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomInt } from 'node:crypto'
import fs from 'node:fs/promises'
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { freePort, type Scope } from './moto.js'
import { asPostgres, serverEnv } from '../../scripts/lib/postgres-server.js'

export type { Scope }

export interface PsqlResult {
  status: number
  stdout: string
  stderr: string
}

export interface PsqlOptions {
  user?: string
  password?: string
  database?: string
}

export interface Postgres {
  readonly host: string
  readonly port: number
  readonly superuser: string
  /** Random, letters and digits only. */
  readonly superPassword: string
  /** postgresql://postgres:PASS@127.0.0.1:PORT/postgres */
  readonly url: string
  /**
   * Runs `sql` through psql over TCP with password authentication, as `user` (the superuser by
   * default) with `password` (the superuser's by default) on `database` (postgres by default).
   * psql runs with -X -A -t -q -v ON_ERROR_STOP=1, so its status is 0 only when every statement
   * succeeded. Never throws on a failure of SQL or of the connection: those are in the result.
   */
  psql(sql: string, opts?: PsqlOptions): Promise<PsqlResult>
  /** Like psql, but throws (with psql's stderr) unless its status is 0; returns stdout trimmed. */
  query(sql: string, opts?: PsqlOptions): Promise<string>
  /** A new empty database of the superuser's; its URL (postgresql://postgres:PASS@HOST:PORT/NAME). */
  createDatabase(): Promise<string>
  /** What pg_dump writes of `database` (plain SQL; bytea as hex), as the superuser over TCP. */
  dump(database: string): Promise<string>
  /** The login roles secretfs's database backend made (v-secretfs-…), sorted. */
  madeUsers(opts?: PsqlOptions): Promise<string[]>
  /** Stops the server now (fast shutdown, SIGINT); teardown does it otherwise. */
  stop(): Promise<void>
  /** Starts it again after stop(), with the same data directory and port. */
  start(): Promise<void>
}

const BIN = '/usr/lib/postgresql/15/bin'
const HOST = '127.0.0.1'
const SUPERUSER = 'postgres'
const READY_MS = 30_000
const STOP_MS = 10_000

/**
 * Whether PostgreSQL 15 is installed. When it is not, the test file is skipped with a reason (tap
 * `plan(0)`), except under CI (CI=true), where it fails: CI must run these tests.
 */
export function havePostgres(t: Scope): boolean {
  if (existsSync(path.join(BIN, 'postgres'))) return true
  const reason = 'PostgreSQL 15 is not installed (apt-get install postgresql); the database backend tests need it'
  if (process.env.CI === 'true') throw new Error(reason)
  t.plan(0, reason)
  return false
}

export async function startPostgres(t: Scope): Promise<Postgres> {
  const { uid, gid } = await postgresIds()
  const superPassword = randomPassword(32)
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'secretfs-pg-'))
  let server: Server | undefined
  t.teardown(async () => {
    await server?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })
  const dataDir = path.join(dir, 'data')
  const socketDir = path.join(dir, 'sock')
  const pwFile = path.join(dir, 'pwfile')
  await fs.chown(dir, uid, gid)
  await fs.chmod(dir, 0o700)
  for (const d of [dataDir, socketDir]) {
    await fs.mkdir(d, { mode: 0o700 })
    await fs.chown(d, uid, gid)
  }
  await fs.writeFile(pwFile, superPassword + '\n', { mode: 0o600 })
  await fs.chown(pwFile, uid, gid)
  try {
    const init = await run(
      '/usr/bin/setpriv',
      asPostgres(
        [
          path.join(BIN, 'initdb'),
          '-D',
          dataDir,
          '--username=' + SUPERUSER,
          '--pwfile=' + pwFile,
          '--auth-host=scram-sha-256',
          '--auth-local=scram-sha-256',
          '-E',
          'UTF8',
          '--locale=C',
          '--no-sync',
        ],
        'TERM',
      ),
      { cwd: dir, env: serverEnv() },
    )
    if (init.status !== 0) throw new Error(`initdb failed (status ${init.status}): ${init.stderr || init.stdout}`)
  } finally {
    await fs.rm(pwFile, { force: true })
  }

  const port = await freePort()
  const srv = new Server(
    [
      path.join(BIN, 'postgres'),
      '-D',
      dataDir,
      '-p',
      String(port),
      '-k',
      socketDir,
      '-c',
      `listen_addresses=${HOST}`,
      '-c',
      'fsync=off',
      '-c',
      'max_connections=200',
      '-c',
      'shared_buffers=16MB',
    ],
    dir,
    port,
  )
  server = srv
  await srv.start()

  /** Nothing of the caller's PG* variables or ~/.pgpass: the password given, or none. */
  const clientEnv = (password: string): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')))
    env.PGPASSWORD = password
    env.PGPASSFILE = '/dev/null'
    env.PGCONNECT_TIMEOUT = '5'
    return env
  }
  const psql = (sql: string, opts: PsqlOptions = {}): Promise<PsqlResult> => {
    const args = [
      '-X',
      '-A',
      '-t',
      '-q',
      '-w',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      HOST,
      '-p',
      String(port),
      '-U',
      opts.user ?? SUPERUSER,
      '-d',
      opts.database ?? 'postgres',
      '-f',
      '-',
    ]
    return run(path.join(BIN, 'psql'), args, { env: clientEnv(opts.password ?? superPassword), input: sql })
  }
  let databases = 0
  const query = async (sql: string, opts?: PsqlOptions) => {
    const r = await psql(sql, opts)
    if (r.status !== 0) throw new Error(`psql failed (status ${r.status}): ${r.stderr.trim()}`)
    return r.stdout.trim()
  }
  return {
    host: HOST,
    port,
    superuser: SUPERUSER,
    superPassword,
    url: `postgresql://${SUPERUSER}:${superPassword}@${HOST}:${port}/postgres`,
    psql,
    query,
    createDatabase: async () => {
      const name = `db_${++databases}`
      await query(`CREATE DATABASE ${name}`)
      return `postgresql://${SUPERUSER}:${superPassword}@${HOST}:${port}/${name}`
    },
    dump: async (database) => {
      const args = ['-w', '-h', HOST, '-p', String(port), '-U', SUPERUSER, '-d', database]
      const r = await run(path.join(BIN, 'pg_dump'), args, { env: clientEnv(superPassword) })
      if (r.status !== 0) throw new Error(`pg_dump failed (status ${r.status}): ${r.stderr.trim()}`)
      return r.stdout
    },
    madeUsers: async (opts) =>
      (await query(`SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-secretfs-%' ORDER BY 1`, opts))
        .split('\n')
        .filter((s) => s !== ''),
    stop: () => srv.stop(),
    start: () => srv.start(),
  }
}

/** The postgres server process: started and stopped, again and again, on one data dir and port. */
class Server {
  private child: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()
  private stderr = ''

  constructor(
    private readonly args: string[],
    private readonly cwd: string,
    private readonly port: number,
  ) {}

  async start(): Promise<void> {
    if (this.child && !this.child.killed) return
    await this.exited // a stop() under way
    this.stderr = ''
    // setpriv execs postgres without forking, and sets the death signal after it changes user:
    // the postmaster itself gets SIGINT (a fast shutdown) if the test dies without its teardown.
    const child = spawn('/usr/bin/setpriv', asPostgres(this.args, 'INT'), {
      cwd: this.cwd,
      env: serverEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child = child
    const keep = (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000))
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
    let running = true
    this.exited = new Promise<void>((resolve) => {
      const done = () => {
        running = false
        if (this.child === child) this.child = undefined
        resolve()
      }
      child.once('exit', done)
      child.once('error', (err) => {
        keep(Buffer.from(`\n${err.message}`))
        done()
      })
    })

    const deadline = Date.now() + READY_MS
    for (;;) {
      const ready = await run(path.join(BIN, 'pg_isready'), ['-q', '-h', HOST, '-p', String(this.port), '-t', '2'], {
        env: { PATH: process.env.PATH },
      })
      if (ready.status === 0) return
      if (!running) throw new Error(`postgres exited before it was ready:\n${this.stderr}`)
      if (Date.now() > deadline) {
        const tail = this.stderr
        await this.stop()
        throw new Error(`postgres was not ready within ${READY_MS / 1000} s:\n${tail}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  async stop(): Promise<void> {
    const child = this.child
    if (!child) return
    child.kill('SIGINT')
    const killer = setTimeout(() => child.kill('SIGKILL'), STOP_MS)
    await this.exited
    clearTimeout(killer)
  }
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all(
    ['-u', '-g'].map(async (flag) => {
      const r = await run('id', [flag, SUPERUSER], {})
      if (r.status !== 0) throw new Error(`there is no ${SUPERUSER} user: ${r.stderr}`)
      return Number(r.stdout.trim())
    }),
  )
  return { uid: uid!, gid: gid! }
}

function randomPassword(n: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  let s = ''
  for (let i = 0; i < n; i++) s += alphabet[randomInt(alphabet.length)]
  return s
}

/**
 * Runs a command to its end; never throws. A death by a signal is status 128 + its number, as in a
 * shell; a failure to start is 127, with the message as stderr.
 */
function run(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string },
): Promise<PsqlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { cwd: opts.cwd, env: opts.env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve({ status: 0, stdout, stderr })
        const { code, signal } = err as { code?: unknown; signal?: NodeJS.Signals | null }
        resolve({
          status: typeof code === 'number' ? code : signal ? 128 + (os.constants.signals[signal] ?? 0) : 127,
          stdout,
          stderr: stderr || err.message,
        })
      },
    )
    child.stdin?.on('error', () => {})
    child.stdin?.end(opts.input ?? '')
  })
}
