// Crash safety, as Vault's write-ahead log for IAM: the daemon is killed (kill -9) after AWS made
// the IAM user and before its access key, and the next start deletes the half-made user. Also the
// failures a user meets through the CLI: wrong root keys, throttling and an AWS that is gone, each
// a clear error within a bounded time, with nothing half made; and a slow AWS that a cat waits for.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { ListUsersCommand } from '@aws-sdk/client-iam'
import { startAwsProxy } from '../../helpers/aws-proxy.js'
import { runCli } from '../../helpers/cli-run.js'
import { realStore, sh, startDaemon, tempDir, type DaemonProcess } from '../../helpers/daemon.js'
import { haveMoto, startMoto } from '../../helpers/moto.js'

if (!haveMoto(t)) process.exit(0)
// Several daemons and a moto, each waited for in turn: slow on a loaded machine.
t.setTimeout(600_000)
const moto = await startMoto(t)
const proxy = await startAwsProxy(t, moto.endpoint)

const work = await tempDir(t)
const policyFile = path.join(work, 'policy.json')
await fs.writeFile(
  policyFile,
  JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ec2:*', Resource: '*' }] }),
)
const rootArgs = (over: Record<string, string> = {}) =>
  Object.entries({ ...moto.rootConfig, ...over }).map(([k, v]) => `${k}=${v}`)

async function users(): Promise<string[]> {
  const out = await moto.iam.send(new ListUsersCommand({}))
  return (out.Users ?? []).map((u) => u.UserName!).filter((n) => n !== 'admin')
}

const cliOf = (d: DaemonProcess) => (args: string[]) => runCli(args, { env: { SECRETFS_ADDR: d.socketPath } })

t.test('kill -9 between CreateUser and CreateAccessKey: the next start deletes the user', async (t) => {
  const { args, mountpoint } = await realStore(t, 6)
  const first = await startDaemon(t, { args, mountpoint })
  const cli = cliOf(first)
  await cli(['mount', 'aws'])
  await cli(['write', 'aws/config/root', ...rootArgs({ iam_endpoint: proxy.endpoint })])
  await cli(['write', 'aws/roles/deploy', `policy=@${policyFile}`])

  proxy.decide = (action) => {
    if (action !== 'CreateAccessKey') return 'forward'
    first.child.kill('SIGKILL')
    return 'hold'
  }
  const read = await cli(['read', 'aws/creds/deploy'])
  t.not(read.code, 0)
  t.match(
    read.stderr,
    /^Error: the daemon at \S+ closed the connection without answering: it may have stopped/,
    'the CLI says the daemon went away',
  )
  t.same(await first.exited, { code: null, signal: 'SIGKILL' })
  t.ok(proxy.actions.includes('CreateUser'), 'the user was made')
  t.equal((await users()).length, 1, 'and is there, half made, with no lease')

  proxy.decide = () => 'forward'
  const second = await startDaemon(t, { args, mountpoint })
  t.same(await users(), [], 'the start (its unseal) deleted the half-made user')
  t.equal((await cliOf(second)(['lease', 'list', 'aws/'])).stderr, "No leases found under 'aws/'\n")
  const again = await cliOf(second)(['read', 'aws/creds/deploy'])
  t.equal(again.code, 0, 'and the backend works as before')
  t.equal((await users()).length, 1)
  t.equal((await cliOf(second)(['revoke', '--prefix', 'aws/'])).code, 0)
  t.same(await users(), [])
})

t.test('wrong root keys, an unknown policy ARN, AWS gone: clear errors, nothing half made', async (t) => {
  const d = await startDaemon(t)
  const cli = cliOf(d)
  await cli(['mount', 'aws'])
  await cli(['write', 'aws/config/root', ...rootArgs({ secret_key: 'not-the-secret-key' })])
  await cli(['write', 'aws/roles/deploy', `policy=@${policyFile}`])
  const wrong = await cli(['read', 'aws/creds/deploy'])
  t.equal(wrong.code, 1)
  t.match(wrong.stderr, /^Error reading aws\/creds\/deploy: .*CreateUser.*SignatureDoesNotMatch/)
  t.notOk(wrong.stderr.includes('not-the-secret-key'), 'the secret key is never in a message')
  t.same(await users(), [])

  await cli(['write', 'aws/config/root', ...rootArgs()])
  await cli(['write', 'aws/roles/arn', 'arn=arn:aws:iam::123456789012:policy/nope'])
  const arn = await cli(['read', 'aws/creds/arn'])
  t.equal(arn.code, 1)
  t.match(arn.stderr, /AttachUserPolicy.*NoSuchEntity/)
  t.same(await users(), [], 'the user made before the refusal was deleted')

  const stopped = await startMoto(t)
  await cli([
    'write',
    'aws/config/root',
    ...rootArgs({ iam_endpoint: stopped.endpoint, sts_endpoint: stopped.endpoint }),
  ])
  await stopped.stop()
  const started = Date.now()
  const gone = await cli(['read', 'aws/creds/deploy'])
  t.equal(gone.code, 1)
  t.match(gone.stderr, /^Error reading aws\/creds\/deploy: .*(ECONNREFUSED|connect)/)
  t.ok(Date.now() - started < 60_000, 'well within the client timeout')
  t.match(d.stderr(), /request failed/, 'the daemon logged it')
  t.notOk(d.stderr().includes(moto.admin.secretAccessKey), 'no secret key in the log')
})

t.test('throttling: retried as max_retries allows, else a clear error and no user left', async (t) => {
  const d = await startDaemon(t)
  const cli = cliOf(d)
  await cli(['mount', 'aws'])
  await cli(['write', 'aws/roles/deploy', `policy=@${policyFile}`])
  let throttled = 0
  proxy.decide = (action) =>
    action === 'CreateAccessKey' && throttled++ < 2
      ? { status: 400, code: 'Throttling', message: 'Rate exceeded' }
      : 'forward'
  t.teardown(() => (proxy.decide = () => 'forward'))

  await cli(['write', 'aws/config/root', ...rootArgs({ iam_endpoint: proxy.endpoint, max_retries: '0' })])
  const refused = await cli(['read', 'aws/creds/deploy'])
  t.equal(refused.code, 1)
  t.match(
    refused.stderr,
    /^Error reading aws\/creds\/deploy: AWS refused CreateAccessKey: Throttling \(Rate exceeded\)/,
  )
  t.same(await users(), [], 'the user made before the refusal was deleted')

  throttled = 0
  await cli(['write', 'aws/config/root', ...rootArgs({ iam_endpoint: proxy.endpoint, max_retries: '3' })])
  const read = await cli(['read', 'aws/creds/deploy', '--format', 'json'])
  t.equal(read.code, 0, read.stderr)
  t.equal(throttled, 3, 'two refusals, then the retry that worked')
  t.equal((await users()).length, 1)
  await cli(['revoke', '--prefix', 'aws/'])
  t.same(await users(), [])
})

t.test('a slow AWS: the open that mints waits for it, and cat gets the whole credential', async (t) => {
  const d = await startDaemon(t)
  const cli = cliOf(d)
  await cli(['mount', 'aws'])
  await cli(['write', 'aws/config/root', ...rootArgs({ iam_endpoint: proxy.endpoint })])
  await cli(['write', 'aws/roles/deploy', `policy=@${policyFile}`])
  proxy.decide = (action) => (action === 'CreateAccessKey' ? { delayMs: 4000 } : 'forward')
  t.teardown(() => (proxy.decide = () => 'forward'))
  const cat = await sh('cat aws/creds/deploy', { cwd: d.mountpoint })
  t.equal(cat.code, 0, cat.stderr)
  t.match(JSON.parse(cat.stdout), { access_key: /^AKIA/, lease_id: /^aws\/creds\/deploy\// })
  await cli(['revoke', '--prefix', 'aws/'])
  t.same(await users(), [])
})
