// Benchmark of current credentials (aws/current/NAME/) on moto_server: a warm read of each form
// through the filesystem (open, read, close from this process; aim <= 2 ms) and through the CLI
// (against the CLI reading a stored secret: its own start-up); then 50 runs of
// `aws sts get-caller-identity` with credential_process against the same runs with the same keys
// written in the aws CLI's config (aim <= 1.1x: the aws CLI's start-up dominates).
// Needs moto_server and the aws CLI on PATH, and FUSE.
// Run: npm run build && node dist/scripts/bench-current.js [--reads 1000] [--calls 50]
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { startMoto } from '../test/helpers/moto.js'
import { median, msSince, startDevDaemon } from './lib/dev-daemon.js'

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}
const reads = arg('--reads', 1000)
const calls = arg('--calls', 50)
const run = promisify(execFile)
const POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'sts:*', Resource: '*' }],
})
const cleanups: (() => unknown)[] = []
const scope = { teardown: (fn: () => unknown) => void cleanups.unshift(fn), plan: () => {} }

async function main(): Promise<Record<string, number>> {
  const moto = await startMoto(scope)
  const d = await startDevDaemon()
  cleanups.unshift(() => d.stop())
  await d.secretfs('mount', 'aws')
  await d.secretfs('write', 'aws/config/root', ...Object.entries(moto.rootConfig).map(([k, v]) => `${k}=${v}`))
  await d.secretfs('write', 'aws/roles/deploy', 'credential_type=iam_user', `policy_document=${POLICY}`)
  await d.secretfs('write', 'secret/static', 'value=x')
  const file = (form: string) => path.join(d.mountpoint, 'aws/current/deploy', form)
  await fs.readFile(file('json')) // made here: what follows is warm

  const out: Record<string, number> = {}
  for (const form of ['credential_process', 'env', 'json']) {
    const times: number[] = []
    for (let i = 0; i < reads; i++) {
      const start = process.hrtime.bigint()
      await fs.readFile(file(form))
      times.push(msSince(start))
    }
    out[`fs_warm_${form}_ms`] = +median(times).toFixed(3)
  }
  const cliTimes: number[] = []
  const cliStatic: number[] = []
  for (let i = 0; i < 20; i++) {
    let start = process.hrtime.bigint()
    await d.secretfs('read', 'aws/current/deploy/credential_process', '--format', 'raw')
    cliTimes.push(msSince(start))
    start = process.hrtime.bigint()
    await d.secretfs('read', 'secret/static', '--format', 'raw')
    cliStatic.push(msSince(start))
  }
  out.cli_warm_credential_process_ms = +median(cliTimes).toFixed(1)
  out.cli_read_stored_secret_ms = +median(cliStatic).toFixed(1)
  out.cli_ratio = +(median(cliTimes) / median(cliStatic)).toFixed(2)

  const creds = JSON.parse(await fs.readFile(file('credential_process'), 'utf8')) as Record<string, string>
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'secretfs-bench-aws-'))
  cleanups.unshift(() => fs.rm(dir, { recursive: true, force: true }))
  const config = (body: string) => fs.writeFile(path.join(dir, 'config'), `[profile b]\nregion = us-east-1\n${body}`)
  const env = {
    ...process.env,
    AWS_CONFIG_FILE: path.join(dir, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
    AWS_PROFILE: 'b',
  }
  const aws = async () => {
    const start = process.hrtime.bigint()
    await run('aws', ['--endpoint-url', moto.endpoint, 'sts', 'get-caller-identity'], { env })
    return msSince(start)
  }
  const viaProcess: number[] = []
  const viaStatic: number[] = []
  for (let i = 0; i < calls; i++) {
    await config(`credential_process = cat ${file('credential_process')}\n`)
    viaProcess.push(await aws())
    await config(`aws_access_key_id = ${creds.AccessKeyId}\naws_secret_access_key = ${creds.SecretAccessKey}\n`)
    viaStatic.push(await aws())
  }
  out.aws_cli_credential_process_ms = +median(viaProcess).toFixed(1)
  out.aws_cli_static_keys_ms = +median(viaStatic).toFixed(1)
  out.aws_cli_ratio = +(median(viaProcess) / median(viaStatic)).toFixed(2)
  await d.secretfs('revoke', '--prefix', 'aws/')
  return out
}

try {
  console.log(JSON.stringify(await main(), null, 2))
} finally {
  for (const fn of cleanups) await fn()
}
