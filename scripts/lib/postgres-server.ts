// For benchmarks: a PostgreSQL 15 server of the benchmark's own, in a temporary directory, on a
// free loopback port, with password (SCRAM) authentication, and durable as a real server is (fsync
// and synchronous_commit on: a commit is on disk when it is answered, as SQLite's is with
// synchronous=FULL). initdb and postgres refuse root: both run as the `postgres` user through
// setpriv, the server with a parent-death signal, so that it stops if the benchmark dies.
// stop() stops it and deletes its directory. (The tests' helper, test/helpers/postgres.ts, is the
// same recipe with fsync off and psql for SQL.)
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

export const PG_BIN = '/usr/lib/postgresql/15/bin'
const HOST = '127.0.0.1'
const SUPERUSER = 'postgres'
const READY_MS = 30_000
const STOP_MS = 10_000

export interface PostgresServer {
  readonly port: number
  /** Makes an empty database; its URL, with the superuser's password in it. */
  createDatabase(name: string): Promise<string>
  /** What `SHOW name` answers (of the postgres database). */
  show(name: string): Promise<string>
  /** Stops the server (fast shutdown) and deletes its directory; safe to call twice. */
  stop(): Promise<void>
}

export function havePostgres(): boolean {
  return fs.existsSync(path.join(PG_BIN, 'postgres'))
}

export async function startPostgresServer(): Promise<PostgresServer> {
  const id = async (flag: string) => {
    const r = await run('id', [flag, SUPERUSER])
    if (r.status !== 0) throw new Error(`there is no ${SUPERUSER} user: ${r.stderr.trim()}`)
    return Number(r.stdout.trim())
  }
  const uid = await id('-u')
  const gid = await id('-g')
  const password = randomBytes(24).toString('hex')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secretfs-bench-pg-'))
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT')
      const killer = setTimeout(() => child?.kill('SIGKILL'), STOP_MS)
      await exited
      clearTimeout(killer)
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    const data = path.join(dir, 'data')
    const sockets = path.join(dir, 'sock')
    const pwFile = path.join(dir, 'pwfile')
    fs.chownSync(dir, uid, gid)
    fs.chmodSync(dir, 0o700)
    for (const d of [data, sockets]) {
      fs.mkdirSync(d, { mode: 0o700 })
      fs.chownSync(d, uid, gid)
    }
    fs.writeFileSync(pwFile, password + '\n', { mode: 0o600 })
    fs.chownSync(pwFile, uid, gid)
    const initdb = [
      path.join(PG_BIN, 'initdb'),
      '-D',
      data,
      `--username=${SUPERUSER}`,
      `--pwfile=${pwFile}`,
      '--auth-host=scram-sha-256',
      '--auth-local=scram-sha-256',
      '-E',
      'UTF8',
      '--locale=C',
    ]
    const init = await run('/usr/bin/setpriv', asPostgres(initdb), { cwd: dir, env: serverEnv() })
    fs.rmSync(pwFile, { force: true })
    if (init.status !== 0) throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`)

    const port = await freePort()
    const postgres = [
      path.join(PG_BIN, 'postgres'),
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      sockets,
      '-c',
      `listen_addresses=${HOST}`,
      '-c',
      'max_connections=100',
    ]
    const server = spawn('/usr/bin/setpriv', asPostgres(postgres, 'INT'), {
      cwd: dir,
      env: serverEnv(),
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    child = server
    let log = ''
    server.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)))
    exited = new Promise((resolve) => server.once('exit', () => resolve()))
    const deadline = Date.now() + READY_MS
    for (;;) {
      const ready = await run(path.join(PG_BIN, 'pg_isready'), ['-q', '-h', HOST, '-p', String(port), '-t', '2'])
      if (ready.status === 0) break
      if (server.exitCode !== null || server.signalCode !== null) throw new Error(`postgres exited:\n${log}`)
      if (Date.now() > deadline) throw new Error(`postgres was not ready within ${READY_MS / 1000} s:\n${log}`)
      await new Promise((r) => setTimeout(r, 100))
    }

    const clientEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: password, PGPASSFILE: '/dev/null' }
    const over = ['-w', '-h', HOST, '-p', String(port), '-U', SUPERUSER]
    return {
      port,
      async createDatabase(name) {
        const r = await run(path.join(PG_BIN, 'createdb'), [...over, name], { env: clientEnv })
        if (r.status !== 0) throw new Error(`createdb ${name} failed (${r.status}): ${r.stderr.trim()}`)
        return `postgresql://${SUPERUSER}:${password}@${HOST}:${port}/${name}`
      },
      async show(name) {
        const sql = `SHOW ${name}`
        const r = await run(path.join(PG_BIN, 'psql'), ['-X', '-A', '-t', ...over, '-d', 'postgres', '-c', sql], {
          env: clientEnv,
        })
        if (r.status !== 0) throw new Error(`psql failed (${r.status}): ${r.stderr.trim()}`)
        return r.stdout.trim()
      },
      stop,
    }
  } catch (e) {
    await stop()
    throw e
  }
}

/** setpriv's arguments to run `cmd` as the postgres user (dying with `deathSignal`, if given). */
export function asPostgres(cmd: string[], deathSignal?: string): string[] {
  return [
    '--reuid',
    SUPERUSER,
    '--regid',
    SUPERUSER,
    '--init-groups',
    ...(deathSignal ? ['--pdeathsig', deathSignal] : []),
    '--',
    ...cmd,
  ]
}

/** The server's environment: none of ours, but a PATH and the C locale. */
export function serverEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C' }
}

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Runs a command to its end; never throws (a failure to start is status 127). */
function run(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: opts.cwd, env: opts.env, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve({ status: 0, stdout, stderr })
      const code = (err as { code?: unknown }).code
      resolve({ status: typeof code === 'number' ? code : 127, stdout, stderr: stderr || err.message })
    })
  })
}
