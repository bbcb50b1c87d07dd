// Keys that work when handed out: AWS refuses a new access key for some seconds after
// CreateAccessKey, so an iam_user read waits until STS GetCallerIdentity, signed with the new key,
// accepts it. A proxy in front of moto refuses each new key's first calls as AWS does.
import t, { type Test } from 'tap'
import { ListUsersCommand } from '@aws-sdk/client-iam'
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts'
import { BarrierView } from '../../../src/barrier/barrier-view.js'
import { listWal } from '../../../src/backends/framework/wal.js'
import { Core } from '../../../src/core/core.js'
import { dataPrefix } from '../../../src/core/mount-table.js'
import { encodeFields } from '../../../src/core/secret-data.js'
import { startAwsProxy } from '../../helpers/aws-proxy.js'
import { kind } from '../../helpers/error-match.js'
import { haveMoto, startMoto } from '../../helpers/moto.js'

interface Creds {
  access_key: string
  secret_key: string
}

const POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'ec2:*', Resource: '*' }],
})
const write = (core: Core, p: string, fields: Record<string, unknown>) => core.write(p, encodeFields(fields))
const parse = (r: { value: Uint8Array }) => JSON.parse(Buffer.from(r.value).toString()) as Creds

if (haveMoto(t)) {
  const moto = await startMoto(t)
  const proxy = await startAwsProxy(t, moto.endpoint)
  proxy.knownKeys.add(moto.admin.accessKeyId)

  const users = async () =>
    ((await moto.iam.send(new ListUsersCommand({}))).Users ?? []).map((u) => u.UserName!).filter((n) => n !== 'admin')

  /** A core with the aws mount, whose STS calls go through the proxy, and the mount's storage. */
  async function setup(t: Test, role: Record<string, unknown> = {}) {
    const core = await Core.dev()
    t.teardown(() => core.close())
    const entry = await core.mount('aws', 'aws')
    await write(core, 'aws/config/root', { ...moto.rootConfig, sts_endpoint: proxy.endpoint })
    await write(core, 'aws/roles/deploy', { credential_type: 'iam_user', policy_document: POLICY, ...role })
    t.teardown(() => {
      proxy.refuseNewKeys = 0
      proxy.decide = () => 'forward'
    })
    return { core, storage: new BarrierView(core.barrier, dataPrefix(entry)) }
  }

  /** The first call a program given `c` makes: GetCallerIdentity through the proxy, as AWS would answer it. */
  async function firstCall(t: Test, c: Creds): Promise<string> {
    const sts = new STSClient({
      endpoint: proxy.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: c.access_key, secretAccessKey: c.secret_key },
      maxAttempts: 1,
    })
    t.teardown(() => sts.destroy())
    return sts.send(new GetCallerIdentityCommand({})).then(
      (r) => r.Arn!,
      (e: Error) => e.name,
    )
  }

  /** The GetCallerIdentity calls signed with `key` that the proxy saw. */
  const callsWith = (key: string) =>
    proxy.actions.filter((a, i) => a === 'GetCallerIdentity' && proxy.signers[i] === key).length

  t.test('with key_ready_timeout=0, a consumer of the keys is refused at first, as on AWS', async (t) => {
    const { core } = await setup(t, { key_ready_timeout: '0' })
    proxy.refuseNewKeys = 3
    const creds = parse(await core.read('aws/creds/deploy'))
    t.equal(callsWith(creds.access_key), 0, 'the backend made no call with the new key')
    t.equal(await firstCall(t, creds), 'InvalidClientTokenId', "the consumer's first call is refused")
    await core.unmount('aws')
    t.same(await users(), [])
  })

  t.test('by default, the read waits until AWS accepts the key: its first use works', async (t) => {
    const { core, storage } = await setup(t)
    proxy.refuseNewKeys = 3
    const creds = parse(await core.read('aws/creds/deploy'))
    t.equal(proxy.refused.get(creds.access_key), 3, 'the backend was refused three times')
    t.equal(callsWith(creds.access_key), 4, 'and tried again until accepted')
    t.match(await firstCall(t, creds), /:user\/secretfs-deploy-/, "the consumer's first call works")
    t.same(await listWal(storage), [], 'the lease is stored and the record dropped')
    await core.unmount('aws')
    t.same(await users(), [])
  })

  t.test('a key never accepted within key_ready_timeout: a clear error, no user, no record', async (t) => {
    const { core, storage } = await setup(t, { key_ready_timeout: '2s' })
    proxy.refuseNewKeys = Infinity
    const e = await core.read('aws/creds/deploy').then(
      () => undefined,
      (e: Error) => e,
    )
    t.match(
      e,
      kind(
        'upstream',
        /^AWS did not accept the new access key within 2 s \(GetCallerIdentity signed with it: InvalidClientTokenId\)\; set the role's key_ready_timeout to wait longer \(such as key_ready_timeout=1m\), or to 0 to hand keys out without waiting$/,
      ),
    )
    const key = [...proxy.refused.keys()].at(-1)!
    t.ok(proxy.refused.get(key)! > 1, 'the backend tried the new key more than once')
    t.same(await users(), [], 'the user is deleted')
    t.same(await listWal(storage), [], 'and its write-ahead record')
  })

  // The backend's own bound on a call is 60 s: a test that outlives half of it was not cut short by key_ready_timeout.
  t.test(
    'a GetCallerIdentity that AWS never answers is bounded by key_ready_timeout too',
    { timeout: 30_000 },
    async (t) => {
      const { core, storage } = await setup(t, { key_ready_timeout: '2s' })
      proxy.decide = (action) => (action === 'GetCallerIdentity' ? 'hold' : 'forward')
      await t.rejects(
        core.read('aws/creds/deploy'),
        kind(
          'upstream',
          /^AWS did not accept the new access key within 2 s \(GetCallerIdentity signed with it: no answer in time\)/,
        ),
      )
      t.same(await users(), [], 'the user is deleted')
      t.same(await listWal(storage), [])
    },
  )

  t.test('only an unknown key is waited out: any other refusal fails the read at once', async (t) => {
    const { core, storage } = await setup(t)
    let signature = 0
    proxy.decide = (action) => {
      if (action !== 'GetCallerIdentity') return 'forward'
      // A key too new to be known can also fail its signature check: that too is waited out.
      if (signature++ === 0) return { status: 403, code: 'SignatureDoesNotMatch', message: 'not yet' }
      return { status: 403, code: 'AccessDenied', message: 'no' }
    }
    await t.rejects(
      core.read('aws/creds/deploy'),
      kind('upstream', /^AWS refused GetCallerIdentity: AccessDenied \(no\)$/),
    )
    t.equal(signature, 2, 'SignatureDoesNotMatch was tried again; AccessDenied was not')
    t.same(await users(), [], 'the user is deleted')
    t.same(await listWal(storage), [])
  })
}
