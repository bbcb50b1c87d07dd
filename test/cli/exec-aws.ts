// AWS credentials piped into the real aws CLI, against a real daemon and moto_server: through
// `exec` (the IAM user exists while the CLI runs, and is gone once it returns) and through
// `eval "$(secretfs read ... --format env)"`; then the README's block as written.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ListUsersCommand } from '@aws-sdk/client-iam'
import { runCli } from '../helpers/cli-run.js'
import { cliCommand, sh, startDaemon, tempDir } from '../helpers/daemon.js'
import { haveMoto, startMoto } from '../helpers/moto.js'

if (!haveMoto(t)) process.exit(0)
try {
  execFileSync('sh', ['-c', 'command -v aws'], { stdio: 'ignore' })
} catch {
  const reason = 'the aws CLI is not on PATH (pip install awscli); these tests run it'
  if (process.env.CI === 'true') throw new Error(reason)
  t.plan(0, reason)
  process.exit(0)
}
const moto = await startMoto(t)
const daemon = await startDaemon(t)
const cli = (args: string[]) => runCli(args, { env: { SECRETFS_ADDR: daemon.socketPath } })
const policy = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: ['sts:*', 's3:*'], Resource: '*' }],
})
for (const args of [
  ['mount', 'aws'],
  ['write', 'aws/config/root', ...Object.entries(moto.rootConfig).map(([k, v]) => `${k}=${v}`)],
  ['write', 'aws/roles/deploy', `policy_document=${policy}`, 'credential_type=iam_user'],
]) {
  const r = await cli(args)
  if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`)
}

/** IAM users other than moto's admin. */
async function users(): Promise<string[]> {
  const out = await moto.iam.send(new ListUsersCommand({}))
  return (out.Users ?? []).map((u) => u.UserName!).filter((n) => n !== 'admin')
}

// The aws CLI with no credentials, profile or config of its own: only what secretfs gives it.
const home = await tempDir(t, 'sfs-aws-home-')
const empty = path.join(home, 'empty')
await fs.writeFile(empty, '')
const c = cliCommand()
const awsEnv: NodeJS.ProcessEnv = {
  HOME: home,
  AWS_CONFIG_FILE: empty,
  AWS_SHARED_CREDENTIALS_FILE: empty,
  AWS_DEFAULT_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  SECRETFS_ADDR: daemon.socketPath,
  ...c.env,
}
// The shell's `secretfs`: the CLI as the tests run it.
const secretfs = [c.file, ...c.args].map((a) => `'${a}'`).join(' ')
const run = (script: string, env: NodeJS.ProcessEnv = {}) =>
  sh(`secretfs() { ${secretfs} "$@"; }\n${script}`, { env: { ...awsEnv, ...env }, timeoutMs: 120_000 })

t.test('exec: the aws CLI runs as the new IAM user, which is gone when it returns', async (t) => {
  t.same(await users(), [])
  const r = await run(
    `secretfs exec aws/creds/deploy -- sh -c 'aws iam list-users --endpoint-url "$1" --query "Users[].UserName" --output text >&2; aws --endpoint-url "$1" sts get-caller-identity' sh ${moto.endpoint}`,
    { AWS_PROFILE: 'nonexistent', AWS_SESSION_TOKEN: 'stale' },
  )
  t.equal(r.code, 0, r.stderr)
  const arn = (JSON.parse(r.stdout) as { Arn: string }).Arn
  t.match(arn, /^arn:aws:iam::\d+:user\/secretfs-deploy-\d+-/, "the minted user's ARN")
  t.match(r.stderr, arn.split('/').pop()!, 'the user existed while the program ran')
  t.same(await users(), [], 'and is deleted once exec returns')

  const kept = await run(
    `secretfs exec --keep-lease aws/creds/deploy -- aws --endpoint-url ${moto.endpoint} sts get-caller-identity`,
  )
  t.equal(kept.code, 0, kept.stderr)
  const user = (JSON.parse(kept.stdout) as { Arn: string }).Arn.split('/').pop()
  t.same(await users(), [user], '--keep-lease leaves it')
  t.equal((await cli(['revoke', '--prefix', 'aws/creds/deploy'])).code, 0)
  t.same(await users(), [])
})

t.test('eval of read --format env: the shell has the credential and its expiry', async (t) => {
  const r = await run(
    `eval "$(secretfs read aws/creds/deploy --format env)"\n` +
      `printf '%s\\n' "$AWS_CREDENTIAL_EXPIRATION" "\${AWS_SESSION_TOKEN-none}" "\${AWS_PROFILE-none}"\n` +
      `aws --endpoint-url ${moto.endpoint} sts get-caller-identity`,
    { AWS_PROFILE: 'nonexistent', AWS_SESSION_TOKEN: 'stale' },
  )
  t.equal(r.code, 0, r.stderr)
  const [expiry, token, profile, ...rest] = r.stdout.split('\n')
  t.same([token, profile], ['none', 'none'], 'an IAM user has no token: the stale one and the profile are unset')
  const left = Date.parse(expiry!) - Date.now()
  t.ok(left > 768 * 3600_000 - 60_000 && left <= 768 * 3600_000, `expires with its lease, in 768h: ${expiry}`)
  const user = (JSON.parse(rest.join('\n')) as { Arn: string }).Arn.split('/').pop()
  t.same(await users(), [user], 'the lease runs on')
  t.equal((await cli(['revoke', '--prefix', 'aws/creds/deploy'])).code, 0)
})

t.test("the README's block, as written", async (t) => {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  const readme = await fs.readFile(path.join(root, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Piping credentials'), readme.indexOf('## Security model'))
  const block = /```sh\n([^]*?)```/.exec(section)?.[1] ?? ''
  const lines = block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '')
  t.equal(lines.length, 3)
  // npx runs the secretfs of ./node_modules/.bin, as in a clone; the aws CLI finds moto through
  // AWS_ENDPOINT_URL.
  const work = path.join(home, 'work')
  await fs.mkdir(path.join(work, 'node_modules', '.bin'), { recursive: true })
  await fs.symlink(
    path.join(root, 'dist', 'src', 'cli', 'main.js'),
    path.join(work, 'node_modules', '.bin', 'secretfs'),
  )
  const r = await sh(lines.join('\n'), {
    cwd: work,
    env: { ...awsEnv, AWS_ENDPOINT_URL: moto.endpoint, NPM_CONFIG_UPDATE_NOTIFIER: 'false' },
    timeoutMs: 120_000,
  })
  t.equal(r.code, 0, r.stderr)
  const arn = /"Arn": "([^"]+)"/.exec(r.stdout)?.[1] ?? ''
  t.match(arn, /:user\/secretfs-deploy-/, 'get-caller-identity: the user of the eval')
  t.same(await users(), [arn.split('/').pop()], "exec's user is gone; the eval's lease runs on")
  t.equal((await cli(['revoke', '--prefix', 'aws/'])).code, 0)
})
