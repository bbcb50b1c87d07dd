// Each role's current credential (aws/current/NAME/), read by real consumers: the aws CLI's
// credential_process from the mounted file and through the secretfs CLI, `eval` of the env form,
// and the AWS SDK's own fromProcess provider. IAM users are counted in moto before and after each:
// fifty aws CLI calls make one user; rm -r revokes it and the next read makes a fresh one; a
// credential with less than a third of its lease left is replaced at the next read.
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ListUsersCommand } from '@aws-sdk/client-iam'
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts'
import { fromProcess } from '@aws-sdk/credential-provider-process'
import { Core } from '../../../src/core/core.js'
import { encodeFields } from '../../../src/core/secret-data.js'
import { MemoryStorage } from '../../../src/storage/memory-storage.js'
import { runCli } from '../../helpers/cli-run.js'
import { sh, startDaemon, tempDir } from '../../helpers/daemon.js'
import { haveMoto, startMoto } from '../../helpers/moto.js'

if (!haveMoto(t)) process.exit(0)
// Fifty runs of the aws CLI (a Python program that takes about a second to start) take a while.
t.setTimeout(900_000)
const moto = await startMoto(t)
const root = fileURLToPath(new URL('../../../', import.meta.url))
const d = await startDaemon(t)
const mnt = d.mountpoint
const cli = (args: string[]) => runCli(args, { env: { SECRETFS_ADDR: d.socketPath } })
const policy = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'sts:*', Resource: '*' }],
})
await cli(['mount', 'aws'])
await cli(['write', 'aws/config/root', ...Object.entries(moto.rootConfig).map(([k, v]) => `${k}=${v}`)])
await cli(['write', 'aws/roles/deploy', 'credential_type=iam_user', `policy_document=${policy}`])

async function users(): Promise<string[]> {
  const out = await moto.iam.send(new ListUsersCommand({}))
  return (out.Users ?? []).map((u) => u.UserName!).filter((n) => n !== 'admin')
}

/** An aws CLI config whose profile `secretfs` runs `command` for its credentials. */
async function awsConfig(command: string): Promise<NodeJS.ProcessEnv> {
  const dir = await tempDir(t)
  const config = path.join(dir, 'config')
  await fs.writeFile(config, `[profile secretfs]\ncredential_process = ${command}\nregion = us-east-1\n`)
  return {
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
    AWS_PROFILE: 'secretfs',
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_SESSION_TOKEN: '',
  }
}

const callerArn = /"Arn": "arn:aws:iam::123456789012:user\/(secretfs-deploy-[^"]+)"/
const userArn = /^arn:aws:iam::123456789012:user\/(secretfs-deploy-\S+)$/

t.test('ls and stat make nothing; each form says the same credential', async (t) => {
  t.equal((await sh('ls aws', { cwd: mnt })).stdout, 'config\ncreds\ncurrent\nroles\nsts\n')
  t.equal(
    (await sh('ls aws/current && ls aws/current/deploy', { cwd: mnt })).stdout,
    'deploy\ncredential_process\nenv\njson\n',
  )
  t.equal(
    (await sh('stat -c %s aws/current/deploy/env >/dev/null && find aws/current -type f | wc -l', { cwd: mnt })).stdout,
    '3\n',
  )
  t.same(await users(), [], 'nothing made yet')
  const process = JSON.parse((await sh('cat aws/current/deploy/credential_process', { cwd: mnt })).stdout) as Record<
    string,
    unknown
  >
  t.same(Object.keys(process), ['Version', 'AccessKeyId', 'SecretAccessKey', 'Expiration'])
  t.match(process, { Version: 1, AccessKeyId: /^AKIA/, Expiration: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/ })
  const env = (await sh('cat aws/current/deploy/env', { cwd: mnt })).stdout
  t.equal(
    env,
    `export AWS_ACCESS_KEY_ID=${process.AccessKeyId}\nexport AWS_SECRET_ACCESS_KEY=${process.SecretAccessKey}\n` +
      `export AWS_CREDENTIAL_EXPIRATION=${process.Expiration}\n`,
  )
  const json = JSON.parse((await sh('cat aws/current/deploy/json', { cwd: mnt })).stdout) as Record<string, unknown>
  t.match(json, {
    access_key: process.AccessKeyId,
    secret_key: process.SecretAccessKey,
    security_token: null,
    lease_id: /^aws\/current\/deploy\//,
  })
  t.equal((await users()).length, 1, 'three forms, one IAM user')
  t.equal((await sh('ls sys/leases/aws/current/deploy | wc -l', { cwd: mnt })).stdout.trim(), '1', 'with one lease')
  const api = await cli(['read', 'aws/current/deploy/credential_process', '--format', 'raw'])
  t.equal(JSON.parse(api.stdout).AccessKeyId, process.AccessKeyId, 'the CLI reads the same')
})

t.test('fifty aws CLI calls through credential_process (the file) make one IAM user', async (t) => {
  await cli(['revoke', '--prefix', 'aws/'])
  t.same(await users(), [], 'no credential yet: the first calls make it')
  const env = await awsConfig(`cat ${mnt}/aws/current/deploy/credential_process`)
  // Four at a time, so that reads also meet while the credential is being made; each call's answer
  // in a file of its own.
  const out = await tempDir(t)
  const call = `aws --endpoint-url ${moto.endpoint} sts get-caller-identity --query Arn --output text`
  const loop = `seq 50 | xargs -P 4 -I{} sh -c '${call} > ${out}/{}'`
  const r = await sh(loop, { env, timeoutMs: 600_000 })
  t.equal(r.code, 0, r.stderr)
  const answers = await Promise.all(
    Array.from({ length: 50 }, (_, i) => fs.readFile(path.join(out, String(i + 1)), 'utf8').catch(() => '(none)')),
  )
  const arns = answers.map((a) => userArn.exec(a.trim())?.[1])
  t.same(
    answers.filter((_, i) => arns[i] === undefined),
    [],
    'every call answered as a user secretfs made',
  )
  const made = await users()
  t.equal(made.length, 1, 'one IAM user for fifty calls')
  t.same(new Set(arns), new Set(made), 'every call was that credential')
})

t.test('the CLI form, eval of the env form and the SDK fromProcess provider: same credential', async (t) => {
  const before = await users()
  const secretfs = `${process.execPath} ${path.join(root, 'dist/src/cli/main.js')}`
  const env = {
    ...(await awsConfig(`${secretfs} read aws/current/deploy/credential_process --format raw`)),
    SECRETFS_ADDR: d.socketPath,
  }
  const viaCli = await sh(`aws --endpoint-url ${moto.endpoint} sts get-caller-identity`, { env })
  t.equal(viaCli.code, 0, viaCli.stderr)
  t.equal(callerArn.exec(viaCli.stdout)?.[1], before[0])

  const evalEnv = await sh(
    `unset AWS_PROFILE; eval "$(cat ${mnt}/aws/current/deploy/env)" && aws --endpoint-url ${moto.endpoint} --region us-east-1 sts get-caller-identity`,
    { env: { AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' } },
  )
  t.equal(evalEnv.code, 0, evalEnv.stderr)
  t.equal(callerArn.exec(evalEnv.stdout)?.[1], before[0])

  const fileEnv = await awsConfig(`cat ${mnt}/aws/current/deploy/credential_process`)
  const saved = { ...process.env }
  Object.assign(process.env, fileEnv)
  t.teardown(() => {
    for (const k of Object.keys(fileEnv)) delete process.env[k]
    Object.assign(process.env, saved)
  })
  const sts = new STSClient({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: fromProcess({ profile: 'secretfs' }),
  })
  t.teardown(() => sts.destroy())
  const me = await sts.send(new GetCallerIdentityCommand({}))
  t.match(me.Arn, new RegExp(`:user/${before[0]}$`))
  t.same(await users(), before, 'still one IAM user')
})

t.test('rm -r current/NAME revokes it; the next read makes a fresh one', async (t) => {
  const [old] = await users()
  const rm = await sh('rm -r aws/current/deploy', { cwd: mnt })
  t.same([rm.code, rm.stderr], [0, ''])
  t.same(await users(), [], 'revoked now')
  t.match((await sh('ls sys/leases/aws/current/deploy', { cwd: mnt })).stderr, /No such file/, 'its lease is gone')
  const fresh = JSON.parse((await sh('cat aws/current/deploy/json', { cwd: mnt })).stdout) as { lease_id: string }
  const now = await users()
  t.equal(now.length, 1)
  t.not(now[0], old, 'a new user')
  t.equal((await cli(['revoke', fresh.lease_id])).code, 0)
  t.same(await users(), [], 'revoking its lease lets it go as well')
  JSON.parse((await sh('cat aws/current/deploy/json', { cwd: mnt })).stdout)
  t.equal((await users()).length, 1, 'and the next read makes one again')
})

t.test('less than a third of its lease left: the next read replaces it, the old one lives on', async (t) => {
  await cli(['revoke', '--prefix', 'aws/'])
  const lease = await cli(['write', 'aws/config/lease', 'lease=6s', 'lease_max=1h'])
  t.equal(lease.code, 0, lease.stderr)
  t.teardown(() => cli(['write', 'aws/config/lease', 'lease=0', 'lease_max=0']))
  type Doc = { access_key: string; lease_id: string; expiration: string; lease_duration: number }
  const read = async () => JSON.parse((await sh('cat aws/current/deploy/json', { cwd: mnt })).stdout) as Doc
  const first = await read()
  t.equal(first.lease_duration, 6)
  const issued = Date.parse(first.expiration) - 6000
  let next = first
  const deadline = Date.now() + 20_000
  while (next.access_key === first.access_key && Date.now() < deadline) {
    const before = Date.now()
    next = await read()
    if (next.access_key === first.access_key) t.ok(before < issued + 4000, 'served while more than a third is left')
    else t.ok(Date.parse(next.expiration) - 6000 >= issued + 4000, 'replaced only once less than a third is left')
    await new Promise((r) => setTimeout(r, 200))
  }
  t.equal((await users()).length, 2, 'the old credential still exists until its lease ends')
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(first.expiration) + 1500 - Date.now())))
  t.equal((await users()).length, 1, 'then its lease ends and it is revoked')
})

t.test("an STS role's current credential: the same files, with a session token", async (t) => {
  await cli(['write', 'aws/roles/session', 'credential_type=session_token'])
  const process = JSON.parse((await sh('cat aws/current/session/credential_process', { cwd: mnt })).stdout) as Record<
    string,
    unknown
  >
  t.same(Object.keys(process), ['Version', 'AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration'])
  const env = (await sh('cat aws/current/session/env', { cwd: mnt })).stdout
  t.match(
    env,
    /^export AWS_ACCESS_KEY_ID=\S+\nexport AWS_SECRET_ACCESS_KEY=\S+\nexport AWS_SESSION_TOKEN=\S+\nexport AWS_CREDENTIAL_EXPIRATION=\S+\n$/,
  )
  const again = JSON.parse((await sh('cat aws/current/session/credential_process', { cwd: mnt })).stdout) as Record<
    string,
    unknown
  >
  t.equal(again.Expiration, process.Expiration, 'served again, not made again')
})

t.test('held in memory only: a seal lets it go, and the next read after unseal makes a new one', async (t) => {
  await cli(['revoke', '--prefix', 'aws/'])
  const unlock = { kind: 'key-file', key: Buffer.alloc(32, 8) } as const
  const core = new Core({ storage: new MemoryStorage() })
  await core.initialize(unlock)
  await core.unseal(unlock)
  t.teardown(() => core.close())
  await core.mount('aws', 'aws')
  await core.write('aws/config/root', encodeFields(moto.rootConfig))
  await core.write('aws/roles/deploy', encodeFields({ credential_type: 'iam_user', policy_document: policy }))
  const key = async () =>
    (
      JSON.parse(Buffer.from((await core.read('aws/current/deploy/credential_process')).value).toString()) as {
        AccessKeyId: string
      }
    ).AccessKeyId
  const first = await key()
  t.equal(await key(), first)
  core.seal()
  await core.unseal(unlock)
  const second = await key()
  t.not(second, first, 'not kept across a seal')
  t.equal((await users()).length, 2, 'the first lives on until its lease ends')
  await core.revokeLeasePrefix('aws/')
  t.same(await users(), [])
})
