// The README's dynamic-secrets blocks run as written against moto_server: the daemon reaches moto
// through the SDK's own AWS_ENDPOINT_URL, so config/root needs no endpoint, and only the README's
// placeholders are filled in (AKIA... with moto's key ID, 0d042c53-... with the printed lease ID).
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { ListUsersCommand } from '@aws-sdk/client-iam'
import { sh, startDaemon } from './helpers/daemon.js'
import { haveMoto, startMoto } from './helpers/moto.js'
import { commands, readmeBlocks, tourHome } from './helpers/readme.js'

if (!haveMoto(t)) process.exit(0)
const [cliBlock = '', shellBlock = ''] = await readmeBlocks('## Dynamic secrets: AWS', '### Leases')

t.test("the README's aws blocks, as written", async (t) => {
  const moto = await startMoto(t)
  const users = async () =>
    ((await moto.iam.send(new ListUsersCommand({}))).Users ?? []).map((u) => u.UserName).filter((n) => n !== 'admin')
  const tour = await tourHome(t, 'sfs-readme-')
  const { home, work } = tour
  await fs.writeFile(
    path.join(work, 'policy.json'),
    JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ec2:*', Resource: '*' }] }),
  )
  const env = {
    ...tour.env,
    KEY_ID: moto.admin.accessKeyId,
    SECRET: moto.admin.secretAccessKey,
  }
  await startDaemon(t, {
    args: ['--dev'],
    mountpoint: path.join(home, 'secrets'),
    env: { ...env, AWS_ENDPOINT_URL: moto.endpoint, AWS_REGION: 'us-east-1' },
  })
  // The commands run where policy.json is.
  const run = (command: string, input?: string) => sh(command, { cwd: work, env, ...(input && { input }) })

  const cli = commands(cliBlock)
  t.equal(cli.length, 5)
  t.equal((await run(cli[0]!)).stdout, "Successfully mounted 'aws' at 'aws'!\n")
  const config = await run(cli[1]!.replace('AKIA...', moto.admin.accessKeyId), moto.admin.secretAccessKey)
  t.same([config.code, config.stdout, config.stderr], [0, 'Success! Data written to: aws/config/root\n', ''])
  t.equal((await run(cli[2]!)).stdout, 'Success! Data written to: aws/roles/deploy\n')
  const read = await run(cli[3]!)
  t.match(read.stdout, /^lease_duration +768h0m0s$/m)
  const id = /^lease_id +(\S+)$/m.exec(read.stdout)?.[1] ?? ''
  t.equal((await users()).length, 1)
  const revoke = await run(cli[4]!.replace('aws/creds/deploy/0d042c53-...', id))
  t.equal(revoke.stdout, `Success! Revoked the secret with ID '${id}', if it existed.\n`)
  t.same(await users(), [])

  t.equal((await run('npx secretfs unmount aws')).code, 0)
  const shell = commands(shellBlock)
  t.equal(shell.length, 6)
  for (const command of shell) {
    const r = await run(command)
    t.same([r.code, r.stderr], [0, ''], command)
    if (command.startsWith('cat ')) {
      t.match(JSON.parse(r.stdout), { access_key: /^AKIA/, security_token: null, lease_id: /^aws\/creds\/deploy\// })
      t.equal((await users()).length, 1, 'cat made one IAM user')
    }
    if (command.startsWith('ls ')) t.match(r.stdout, /^[0-9a-f-]{36}\n$/)
  }
  t.same(await users(), [], 'rm revoked it')
})
