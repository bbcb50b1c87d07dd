// The dynamic-secrets page, word for word, against a real daemon and moto_server: through the CLI
// and through the filesystem; then what leases promise end to end: expiry deletes the IAM user,
// unmount deletes every user, a bad role write is refused with a reason in the log, and a daemon
// that restarts revokes what expired while it was down.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts'
import { ListUsersCommand } from '@aws-sdk/client-iam'
import { runCli } from '../../helpers/cli-run.js'
import { realStore, sh, startDaemon, tempDir, type DaemonProcess } from '../../helpers/daemon.js'
import { haveMoto, startMoto, type Moto } from '../../helpers/moto.js'

if (!haveMoto(t)) process.exit(0)
// Several daemons and a moto, each waited for in turn: slow on a loaded machine.
t.setTimeout(600_000)
const moto = await startMoto(t)

/** The page's policy.json, byte for byte. */
const POLICY = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "Stmt1426528957000",
      "Effect": "Allow",
      "Action": [
        "ec2:*"
      ],
      "Resource": [
        "*"
      ]
    }
  ]
}
`
const work = await tempDir(t)
const policyFile = path.join(work, 'policy.json')
await fs.writeFile(policyFile, POLICY)

const rootArgs = Object.entries(moto.rootConfig).map(([k, v]) => `${k}=${v}`)

/** IAM users other than moto's admin. */
async function users(m: Moto = moto): Promise<string[]> {
  const out = await m.iam.send(new ListUsersCommand({}))
  return (out.Users ?? []).map((u) => u.UserName!).filter((n) => n !== 'admin')
}

async function authenticates(accessKeyId: string, secretAccessKey: string): Promise<boolean> {
  try {
    await moto.sts({ accessKeyId, secretAccessKey }).send(new GetCallerIdentityCommand({}))
    return true
  } catch {
    return false
  }
}

async function until(what: string, cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const cliOf = (d: DaemonProcess) => (args: string[]) => runCli(args, { env: { SECRETFS_ADDR: d.socketPath } })

t.test('the page, word for word, with the CLI', async (t) => {
  const d = await startDaemon(t)
  const cli = cliOf(d)
  t.same(await cli(['mount', 'aws']).then((r) => [r.code, r.stdout]), [0, "Successfully mounted 'aws' at 'aws'!\n"])
  const config = await cli(['write', 'aws/config/root', ...rootArgs])
  t.same([config.code, config.stdout, config.stderr], [0, 'Success! Data written to: aws/config/root\n', ''])
  const shown = await cli(['read', 'aws/config/root'])
  t.match(shown.stdout, new RegExp(`^access_key +${moto.admin.accessKeyId}$`, 'm'))
  t.notOk(shown.stdout.includes(moto.admin.secretAccessKey), 'the secret key never comes back out')
  t.notMatch(shown.stdout, /secret_key/)

  const bad = await cli(['write', 'aws/roles/bad', 'credential_type=root_user', 'policy_document={}'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /^Error writing aws\/roles\/bad: .*credential_type/, 'the CLI gives the reason')
  t.equal((await cli(['list', 'aws/roles'])).stderr, 'No entries found at aws/roles\n', 'nothing stored')

  const role = await cli(['write', 'aws/roles/deploy', `policy=@${policyFile}`])
  t.same([role.code, role.stdout], [0, 'Success! Data written to: aws/roles/deploy\n'])

  const read = await cli(['read', 'aws/creds/deploy'])
  t.equal(read.code, 0, read.stderr)
  const rows = read.stdout.trimEnd().split('\n')
  t.same(
    rows.map((r) => r.split(/ +/)[0]),
    ['Key', '---', 'lease_id', 'lease_duration', 'lease_renewable', 'access_key', 'secret_key', 'security_token'],
    "the page's table, in the page's order",
  )
  const value = (k: string) => rows.find((r) => r.startsWith(k + ' '))!.replace(/^\S+ +/, '')
  const leaseId = value('lease_id')
  t.match(leaseId, /^aws\/creds\/deploy\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  t.same([value('lease_duration'), value('lease_renewable'), value('security_token')], ['768h0m0s', 'true', '<nil>'])
  t.match(value('access_key'), /^AKIA/)
  t.ok(await authenticates(value('access_key'), value('secret_key')), 'the new keys work')
  t.equal((await users()).length, 1, 'one IAM user')
  t.notOk(d.stderr().includes(value('secret_key')), 'the secret key is in no log line')

  const revoke = await cli(['revoke', leaseId])
  t.same([revoke.code, revoke.stdout], [0, `Success! Revoked the secret with ID '${leaseId}', if it existed.\n`])
  t.same(await users(), [], 'no IAM users exist')
  t.notOk(await authenticates(value('access_key'), value('secret_key')), 'the keys no longer work')
})

t.test('the same through the filesystem', async (t) => {
  const d = await startDaemon(t)
  const root = (cmd: string) => sh(cmd, { cwd: d.mountpoint })
  t.equal((await root('mkdir aws')).code, 0)
  t.match((await root('cat sys/mounts')).stdout, /^aws\/ +aws/m)
  const lines = Object.entries(moto.rootConfig)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')
  t.equal((await sh(`cat > aws/config/root`, { cwd: d.mountpoint, input: lines + '\n' })).code, 0)
  t.equal((await root('echo \'{"lease": "1h", "lease_max": "2h"}\' > aws/config/lease')).code, 0)
  t.equal((await root(`cp ${policyFile} aws/roles/deploy`)).code, 0)
  t.equal((await root('ls aws/roles')).stdout, 'deploy\n')
  const role = JSON.parse((await root('cat aws/roles/deploy')).stdout) as Record<string, unknown>
  t.match(role, { credential_type: 'iam_user' })
  t.same(JSON.parse(role.policy_document as string), JSON.parse(POLICY))

  t.equal((await root('ls aws/creds && stat aws/creds/deploy >/dev/null && find aws -type f >/dev/null')).code, 0)
  t.same(await users(), [], 'ls, stat and find mint nothing')
  const cat = await root('cat aws/creds/deploy')
  const doc = JSON.parse(cat.stdout) as Record<string, unknown>
  t.same(Object.keys(doc).slice(0, 3), ['access_key', 'secret_key', 'security_token'])
  t.match(doc, { security_token: null, lease_id: /^aws\/creds\/deploy\//, lease_duration: 3600, expiration: /Z$/ })
  t.equal((await users()).length, 1, 'one cat, one IAM user')
  t.ok(await authenticates(doc.access_key as string, doc.secret_key as string))
  const id = (doc.lease_id as string).split('/').pop()!
  t.equal((await root('ls sys/leases/aws/creds/deploy')).stdout, id + '\n')
  t.equal((await root(`rm sys/leases/aws/creds/deploy/${id}`)).code, 0)
  t.same(await users(), [], 'rm of the lease deleted the user')

  const badWrites: [string, string][] = [
    ['an unknown credential_type', '{"credential_type": "root_user", "policy_document": "{}"}'],
    ['a policy that is not JSON', 'policy_document={"Version": '],
    ['assumed_role without role_arns', 'credential_type=assumed_role'],
    [
      'a TTL over its max',
      '{"credential_type": "federation_token", "policy_document": "{}", "default_sts_ttl": "2h", "max_sts_ttl": "1h"}',
    ],
    ['an unknown field', '{"credential_type": "iam_user", "policy_document": "{}", "colour": "red"}'],
  ]
  for (const [what, content] of badWrites) {
    const bad = await sh('cat > aws/roles/bad', { cwd: d.mountpoint, input: content })
    t.match(bad.stderr, /Invalid argument/, what)
    t.equal((await root('ls aws/roles')).stdout, 'deploy\n', `${what}: nothing stored`)
  }
  const refusals = d
    .stderr()
    .split('\n')
    .filter((l) => /a write was refused/.test(l))
  t.equal(refusals.length, 5, 'each refusal is logged with its reason')
  t.match(refusals[0] ?? '', /credential_type/)
  t.equal((await root('rm aws/roles/deploy && ls aws/roles')).stdout, '')
})

t.test('expiry deletes the user; unmount deletes every user', async (t) => {
  const d = await startDaemon(t)
  const cli = cliOf(d)
  await cli(['mount', 'aws'])
  await cli(['write', 'aws/config/root', ...rootArgs])
  await cli(['write', 'aws/config/lease', 'lease=2s', 'lease_max=1h'])
  await cli(['write', 'aws/roles/deploy', `policy=@${policyFile}`])
  const first = JSON.parse((await cli(['read', 'aws/creds/deploy', '--format', 'json'])).stdout) as {
    lease_duration: number
    data: { access_key: string; secret_key: string }
  }
  t.equal(first.lease_duration, 2)
  await until('the expired user to be deleted', async () => (await users()).length === 0)
  t.notOk(await authenticates(first.data.access_key, first.data.secret_key))
  t.equal((await cli(['lease', 'list', 'aws/'])).stderr, "No leases found under 'aws/'\n")

  await cli(['write', 'aws/config/lease', 'lease=1h', 'lease_max=1h'])
  await cli(['read', 'aws/creds/deploy'])
  await cli(['read', 'aws/creds/deploy'])
  t.equal((await users()).length, 2)
  t.equal((await cli(['unmount', 'aws'])).code, 0)
  t.same(await users(), [], 'unmount revoked every lease')
})

t.test('a restart revokes what expired while the daemon was down', async (t) => {
  const { args, mountpoint } = await realStore(t, 4)
  const first = await startDaemon(t, { args, mountpoint })
  const cli = cliOf(first)
  await cli(['mount', 'aws'])
  await cli(['write', 'aws/config/root', ...rootArgs])
  t.equal((await cli(['write', 'aws/config/lease', 'lease=2s', 'lease_max=1h'])).code, 0)
  await cli(['write', 'aws/roles/deploy', `policy=@${policyFile}`])
  await cli(['read', 'aws/creds/deploy'])
  t.same(await first.stop(), { code: 0, signal: null })
  t.equal((await users()).length, 1, 'a stopped daemon revokes nothing')
  await new Promise((r) => setTimeout(r, 2500)) // the lease expires while the daemon is down
  t.equal((await users()).length, 1)
  await startDaemon(t, { args, mountpoint })
  await until('the restarted daemon to revoke the expired lease', async () => (await users()).length === 0)
  t.pass('revoked at unseal')
})
