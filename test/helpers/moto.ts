// Test helper: a moto_server (a local fake of AWS) on a free loopback port, stopped in teardown,
// with an "admin" IAM user whose keys are the backend's config/root. Moto checks signatures and
// IAM permissions only after its first INITIAL_NO_AUTH_ACTION_COUNT requests: those are the three
// that make the admin user, so every later request must be signed by a real key of moto's.

import { execFileSync, spawn } from 'node:child_process'
import net from 'node:net'
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam'
import { STSClient } from '@aws-sdk/client-sts'

/** What the helper needs of a tap test. */
export interface Scope {
  teardown(fn: () => unknown): void
  plan(n: number, reason?: string): void
}

export interface Keys {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

export interface Moto {
  /** http://127.0.0.1:PORT: moto serves IAM and STS (and every other service) there. */
  readonly endpoint: string
  readonly admin: Keys
  /** The config/root fields that make the backend call this moto as the admin user. */
  readonly rootConfig: Record<string, string>
  /** An IAM client of the admin user. */
  readonly iam: IAMClient
  /** An STS client signing with `keys` (the admin's by default). */
  sts(keys?: Keys): STSClient
  /** Stops moto now (teardown does it otherwise); later calls to it fail to connect. */
  stop(): Promise<void>
}

const BOOTSTRAP_REQUESTS = 3
const ALLOW_ALL = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
})

/**
 * Whether moto_server is on PATH. When it is not, the test file is skipped with a reason (tap
 * `plan(0)`), except under CI (CI=true), where it fails: CI must run these tests.
 */
export function haveMoto(t: Scope): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v moto_server'], { stdio: 'ignore' })
    return true
  } catch {
    const reason = 'moto_server is not on PATH (pip install "moto[server]"); the aws backend tests need it'
    if (process.env.CI === 'true') throw new Error(reason)
    t.plan(0, reason)
    return false
  }
}

export async function startMoto(t: Scope): Promise<Moto> {
  const port = await freePort()
  // setpriv --pdeathsig: moto stops with the test even when the test is killed (a tap timeout).
  const child = spawn(
    '/usr/bin/setpriv',
    ['--pdeathsig', 'TERM', 'moto_server', '-H', '127.0.0.1', '-p', String(port)],
    {
      env: { ...process.env, INITIAL_NO_AUTH_ACTION_COUNT: String(BOOTSTRAP_REQUESTS) },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let running = true
  void exited.then(() => (running = false))
  const clients: { destroy(): void }[] = []
  const stop = async () => {
    for (const c of clients) c.destroy()
    if (!running) return
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(killer)
  }
  t.teardown(stop)

  // A TCP connect, not an HTTP request: every request moto answers counts towards the free ones.
  const deadline = Date.now() + 30_000
  while (!(await canConnect(port))) {
    if (!running) throw new Error(`moto_server exited before listening: ${stderr}`)
    if (Date.now() > deadline) throw new Error(`moto_server did not listen within 30 s: ${stderr}`)
    await new Promise((r) => setTimeout(r, 100))
  }

  const endpoint = `http://127.0.0.1:${port}`
  const config = (keys: Keys) => ({ endpoint, region: 'us-east-1', credentials: keys, maxAttempts: 1 })
  const bootstrap = new IAMClient(config({ accessKeyId: 'bootstrap', secretAccessKey: 'bootstrap' }))
  clients.push(bootstrap)
  await bootstrap.send(new CreateUserCommand({ UserName: 'admin' }))
  await bootstrap.send(new PutUserPolicyCommand({ UserName: 'admin', PolicyName: 'all', PolicyDocument: ALLOW_ALL }))
  const key = (await bootstrap.send(new CreateAccessKeyCommand({ UserName: 'admin' }))).AccessKey!
  const admin = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! }
  const iam = new IAMClient(config(admin))
  clients.push(iam)
  return {
    endpoint,
    admin,
    rootConfig: {
      access_key: admin.accessKeyId,
      secret_key: admin.secretAccessKey,
      region: 'us-east-1',
      iam_endpoint: endpoint,
      sts_endpoint: endpoint,
      max_retries: '0',
    },
    iam,
    sts(keys = admin) {
      const sts = new STSClient(config(keys))
      clients.push(sts)
      return sts
    },
    stop,
  }
}

/** A port nothing listens on now (the kernel's pick for a socket bound to port 0). */
export async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Whether something accepts a TCP connection on the loopback `port`. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
