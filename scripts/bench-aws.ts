// Benchmark of the aws backend on moto_server: a cold `cat creds/NAME` on the mount (an iam_user
// role: a write-ahead record, CreateUser, PutUserPolicy, CreateAccessKey, the lease stored) against
// the same IAM calls made directly with the SDK from this process, alternating, medians of the
// rounds. Aim: <= 1.2x. A `cat` of a stored secret is timed too: starting cat and FUSE's round
// trips cost the same for any file, so the ratio over it is what minting costs over the SDK.
// Needs moto_server on PATH and FUSE.
// Run: npm run build && node dist/scripts/bench-aws.js [--rounds 30]
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam'
import { startMoto } from '../test/helpers/moto.js'

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 30
const here = path.dirname(fileURLToPath(import.meta.url))
const repo = import.meta.url.endsWith('.ts') ? path.resolve(here, '..') : path.resolve(here, '../..')
const cli = path.join(repo, 'dist/src/cli/main.js')
const run = promisify(execFile)
const POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'ec2:*', Resource: '*' }],
})

const cleanups: (() => unknown)[] = []
const scope = { teardown: (fn: () => unknown) => void cleanups.unshift(fn), plan: () => {} }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6

async function main(): Promise<void> {
  const moto = await startMoto(scope)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secretfs-bench-'))
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  const mnt = path.join(dir, 'mnt')
  const env = { ...process.env, SECRETFS_ADDR: path.join(dir, 'api', 'secretfs.sock') }
  const daemon = spawn(process.execPath, [cli, 'server', '--dev', '--mountpoint', mnt], { env, stdio: 'pipe' })
  cleanups.unshift(
    () =>
      new Promise((resolve) => {
        daemon.once('exit', resolve)
        daemon.kill('SIGTERM')
      }),
  )
  await new Promise<void>((resolve, reject) => {
    let out = ''
    daemon.stdout.on('data', (d: Buffer) => (out += d.toString()) && /stop it with/.test(out) && resolve())
    daemon.once('exit', () => reject(new Error('the daemon exited before mounting')))
  })
  const secretfs = (...args: string[]) => run(process.execPath, [cli, ...args], { env })
  await secretfs('mount', 'aws')
  await secretfs('write', 'aws/config/root', ...Object.entries(moto.rootConfig).map(([k, v]) => `${k}=${v}`))
  await secretfs('write', 'aws/roles/deploy', 'credential_type=iam_user', `policy_document=${POLICY}`)

  // `cat` run by one long-lived shell, so that what is timed is cat and the mount, not the cost
  // of starting a process from Node. The floor: the same cat of a stored secret.
  await secretfs('write', 'secret/static', 'value=x')
  const shell = spawn('bash', ['-c', 'while IFS= read -r f; do cat "$f"; printf "\\0"; done'], { stdio: 'pipe' })
  cleanups.unshift(() => shell.kill())
  let pending: ((out: string) => void) | undefined
  let buffered = ''
  shell.stdout.on('data', (d: Buffer) => {
    buffered += d.toString()
    const end = buffered.indexOf('\0')
    if (end >= 0 && pending) {
      const out = buffered.slice(0, end)
      buffered = buffered.slice(end + 1)
      pending(out)
    }
  })
  const cat = (file: string) =>
    new Promise<string>((resolve) => {
      pending = resolve
      shell.stdin.write(file + '\n')
    })
  const catTimes: number[] = []
  const sdkTimes: number[] = []
  const staticTimes: number[] = []
  for (let i = 0; i < rounds; i++) {
    let start = process.hrtime.bigint()
    await cat(path.join(mnt, 'secret/static'))
    staticTimes.push(ms(start))

    start = process.hrtime.bigint()
    const stdout = await cat(path.join(mnt, 'aws/creds/deploy'))
    catTimes.push(ms(start))
    if (!JSON.parse(stdout).access_key) throw new Error('cat printed no credentials')

    start = process.hrtime.bigint()
    const user = `direct-${i}-${Date.now()}`
    await moto.iam.send(new CreateUserCommand({ UserName: user }))
    await moto.iam.send(new PutUserPolicyCommand({ UserName: user, PolicyName: 'p', PolicyDocument: POLICY }))
    await moto.iam.send(new CreateAccessKeyCommand({ UserName: user }))
    sdkTimes.push(ms(start))
  }
  await secretfs('revoke', '--prefix', 'aws/')
  const creds = median(catTimes)
  const sdk = median(sdkTimes)
  const floor = median(staticTimes)
  console.log(
    JSON.stringify(
      {
        rounds,
        cold_cat_creds_ms: +creds.toFixed(2),
        sdk_direct_ms: +sdk.toFixed(2),
        ratio: +(creds / sdk).toFixed(2),
        cat_static_secret_ms: +floor.toFixed(2),
        // What minting adds to a cat, against the SDK's calls: the backend's share of the ratio.
        ratio_over_static_cat: +((creds - floor) / sdk).toFixed(2),
      },
      null,
      2,
    ),
  )
}

try {
  await main()
} finally {
  for (const fn of cleanups) await fn()
}
