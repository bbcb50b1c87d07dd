// Benchmark of the aws backend on moto_server: a cold `cat creds/NAME` on the mount (an iam_user
// role: a write-ahead record, CreateUser, PutUserPolicy, CreateAccessKey, the lease stored) against
// the same IAM calls made directly with the SDK from this process, alternating, medians of the
// rounds. Aim: <= 1.2x. A `cat` of a stored secret is timed too: starting cat and FUSE's round
// trips cost the same for any file, so the ratio over it is what minting costs over the SDK.
// Needs moto_server on PATH and FUSE.
// Run: npm run build && node dist/scripts/bench-aws.js [--rounds 30]
import path from 'node:path'
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam'
import { startMoto } from '../test/helpers/moto.js'
import { coldCatRounds } from './lib/catter.js'
import { startDevDaemon } from './lib/dev-daemon.js'

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 30
const POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'ec2:*', Resource: '*' }],
})

const cleanups: (() => unknown)[] = []
const scope = { teardown: (fn: () => unknown) => void cleanups.unshift(fn), plan: () => {} }

async function main(): Promise<void> {
  const moto = await startMoto(scope)
  const d = await startDevDaemon()
  cleanups.unshift(() => d.stop())
  await d.secretfs('mount', 'aws')
  await d.secretfs('write', 'aws/config/root', ...Object.entries(moto.rootConfig).map(([k, v]) => `${k}=${v}`))
  // The same IAM calls as the SDK's below: without the wait for the new key (one STS call more).
  await d.secretfs(
    'write',
    'aws/roles/deploy',
    'credential_type=iam_user',
    `policy_document=${POLICY}`,
    'key_ready_timeout=0',
  )
  await d.secretfs('write', 'secret/static', 'value=x')
  const {
    cat: c,
    direct: s,
    floor: f,
  } = await coldCatRounds({
    rounds,
    floorFile: path.join(d.mountpoint, 'secret/static'),
    file: path.join(d.mountpoint, 'aws/creds/deploy'),
    check: (out) => {
      if (!JSON.parse(out).access_key) throw new Error('cat printed no credentials')
    },
    async direct(i) {
      const user = `direct-${i}-${Date.now()}`
      await moto.iam.send(new CreateUserCommand({ UserName: user }))
      await moto.iam.send(new PutUserPolicyCommand({ UserName: user, PolicyName: 'p', PolicyDocument: POLICY }))
      await moto.iam.send(new CreateAccessKeyCommand({ UserName: user }))
    },
  })
  await d.secretfs('revoke', '--prefix', 'aws/')
  console.log(
    JSON.stringify(
      {
        rounds,
        cold_cat_creds_ms: +c.toFixed(2),
        sdk_direct_ms: +s.toFixed(2),
        ratio: +(c / s).toFixed(2),
        cat_static_secret_ms: +f.toFixed(2),
        // What minting adds to a cat, against the SDK's calls: the backend's share of the ratio.
        ratio_over_static_cat: +((c - f) / s).toFixed(2),
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
