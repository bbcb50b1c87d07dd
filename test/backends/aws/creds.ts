// The aws backend against moto_server: each credential type, revocation that leaves nothing in
// IAM, AWS's refusals as clear `upstream` errors with nothing half made, and recovery of users a
// write-ahead record names.
import t, { type Test } from 'tap'
import {
  CreateAccessKeyCommand,
  CreateGroupCommand,
  CreatePolicyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  GetGroupCommand,
  GetUserCommand,
  ListAccessKeysCommand,
  ListEntitiesForPolicyCommand,
  ListUsersCommand,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
  AddUserToGroupCommand,
  AttachUserPolicyCommand,
} from '@aws-sdk/client-iam'
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts'
import { BarrierView } from '../../../src/barrier/barrier-view.js'
import { AwsBackend } from '../../../src/backends/aws/backend.js'
import { listWal, putWal } from '../../../src/backends/framework/wal.js'
import type { Lease, ReadResult } from '../../../src/backends/backend.js'
import { Core } from '../../../src/core/core.js'
import { dataPrefix, type MountEntry } from '../../../src/core/mount-table.js'
import { encodeFields } from '../../../src/core/secret-data.js'
import { kind } from '../../helpers/error-match.js'
import { haveMoto, startMoto, type Keys } from '../../helpers/moto.js'

interface Creds {
  access_key: string
  secret_key: string
  security_token: string | null
}

const allow = (action: string) =>
  JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: action, Resource: '*' }] })

const write = (core: Core, p: string, fields: Record<string, unknown>) => core.write(p, encodeFields(fields))
const parse = (r: { value: Uint8Array }) => JSON.parse(Buffer.from(r.value).toString()) as Creds
const keys = (c: Creds): Keys => ({
  accessKeyId: c.access_key,
  secretAccessKey: c.secret_key,
  ...(c.security_token && { sessionToken: c.security_token }),
})

if (haveMoto(t)) {
  const moto = await startMoto(t)
  const account = (await moto.sts().send(new GetCallerIdentityCommand({}))).Account!

  /** The IAM users moto has besides admin. */
  const users = async () =>
    ((await moto.iam.send(new ListUsersCommand({}))).Users ?? []).map((u) => u.UserName!).filter((n) => n !== 'admin')

  /** Whether `k` authenticates to STS; otherwise the error's name. */
  const whoami = (k: Keys) =>
    moto
      .sts(k)
      .send(new GetCallerIdentityCommand({}))
      .then(
        (r) => r.Arn!,
        (e: Error) => e.name,
      )

  async function setup(t: Test, root = moto.rootConfig) {
    const core = await Core.dev()
    t.teardown(() => core.close())
    const entry = await core.mount('aws', 'aws')
    await write(core, 'aws/config/root', root)
    return { core, entry, ...direct(core, entry) }
  }

  /** A second backend over the mount's storage, to call revoke and recover and to see the WAL. */
  const direct = (core: Core, entry: MountEntry) => {
    const storage = new BarrierView(core.barrier, dataPrefix(entry))
    // Its reads of creds/ are leased by whoever calls it; current/ (which leases itself) is not used here.
    const leases = {
      register: () => Promise.reject(new Error('not leased here')),
      revoke: () => Promise.resolve(),
      ttls: () => ({ ttl: 3600, max: 3600 }),
    }
    return { storage, backend: new AwsBackend({ storage, leases, mount: () => entry, maxValueSize: 1 << 20 }) }
  }

  t.test('iam_user credentials work, carry the role, and revocation deletes all of it', async (t) => {
    const { core, backend, storage, entry } = await setup(t)
    const policy = (
      await moto.iam.send(new CreatePolicyCommand({ PolicyName: 'read-only', PolicyDocument: allow('s3:Get*') }))
    ).Policy!.Arn!
    await moto.iam.send(new CreateGroupCommand({ GroupName: 'devs' }))
    await write(core, 'aws/config/lease', { lease: '1h', lease_max: '24h' })
    await write(core, 'aws/roles/deploy', {
      credential_type: 'iam_user',
      policy_document: allow('sts:GetCallerIdentity'),
      policy_arns: policy,
      iam_groups: 'devs',
      iam_tags: 'team=web',
      user_path: '/secretfs/',
    })

    const result = await core.read('aws/creds/deploy')
    const creds = parse(result)
    t.same(Object.keys(creds), ['access_key', 'secret_key', 'security_token'])
    t.equal(creds.security_token, null)
    t.ok(result.lease, 'the read carries a lease')

    const [username] = await users()
    t.match(username, /^secretfs-deploy-\d{10}-[A-Za-z0-9]{20}$/)
    t.equal(await whoami(keys(creds)), `arn:aws:iam::${account}:user/secretfs/${username}`, 'the keys authenticate')
    const user = (await moto.iam.send(new GetUserCommand({ UserName: username }))).User!
    t.equal(user.Path, '/secretfs/')
    t.same(user.Tags, [{ Key: 'team', Value: 'web' }])
    t.same(
      (await moto.iam.send(new GetGroupCommand({ GroupName: 'devs' }))).Users?.map((u) => u.UserName),
      [username],
    )
    t.same(
      (await moto.iam.send(new ListEntitiesForPolicyCommand({ PolicyArn: policy }))).PolicyUsers?.map(
        (u) => u.UserName,
      ),
      [username],
    )
    // Moto enforces the user's policies: the keys may do what the role allows and nothing else.
    const { IAMClient } = await import('@aws-sdk/client-iam')
    const asUser = new IAMClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: keys(creds) })
    t.teardown(() => asUser.destroy())
    await t.rejects(asUser.send(new ListUsersCommand({})), { name: 'AccessDenied' })

    // The lease as the backend asks for it: config/lease's TTLs, renewable, and no secret in its data.
    const { backend: other } = direct(core, entry)
    const asked: ReadResult = await other.read('creds/deploy')
    t.match(asked.lease, {
      ttl: 3600,
      maxTtl: 86400,
      renewable: true,
      data: { kind: 'iam_user', policy_name: 'deploy', policy_arns: [policy], groups: ['devs'] },
    })
    t.notMatch(JSON.stringify(asked.lease), parse(asked).secret_key)
    const names = (await listWal<{ username: string }>(storage)).map((r) => r.record.username)
    t.ok(names.includes(JSON.parse(JSON.stringify(asked.lease!.data)).username), 'a record names the user until leased')
    await asked.leased!()
    t.equal((await listWal(storage)).length, names.length - 1, 'leased() drops it')
    t.equal(await backend.renew!(leaseOf(asked), 7200), 3600, 'renewal is capped at config/lease')
    await backend.revoke!(leaseOf(asked))

    await backend.revoke!(result.lease!)
    t.same(await users(), [], 'the user is gone')
    t.equal(await whoami(keys(creds)), 'InvalidClientTokenId', 'the keys no longer authenticate')
    await t.rejects(moto.iam.send(new ListAccessKeysCommand({ UserName: username })), { name: 'NoSuchEntityException' })
    t.same((await moto.iam.send(new GetGroupCommand({ GroupName: 'devs' }))).Users, [], 'out of the group')
    t.same((await moto.iam.send(new ListEntitiesForPolicyCommand({ PolicyArn: policy }))).PolicyUsers, [], 'detached')
    await backend.revoke!(result.lease!)
    t.pass('revoking a user already gone succeeds')
  })

  t.test('unmount revokes every IAM user of the mount', async (t) => {
    const { core } = await setup(t)
    await write(core, 'aws/roles/deploy', { policy: allow('sts:GetCallerIdentity') })
    const a = parse(await core.read('aws/creds/deploy'))
    const b = parse(await core.read('aws/creds/deploy'))
    t.equal((await users()).length, 2)
    t.match(await whoami(keys(a)), /:user\/secretfs-deploy-/)
    await core.unmount('aws')
    t.same(await users(), [])
    t.equal(await whoami(keys(a)), 'InvalidClientTokenId')
    t.equal(await whoami(keys(b)), 'InvalidClientTokenId')
  })

  t.test('assumed_role credentials authenticate as the role, for the role TTL', async (t) => {
    const { core, backend, entry } = await setup(t)
    const trust = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:user/admin` }, Action: 'sts:AssumeRole' },
      ],
    })
    const role = (await moto.iam.send(new CreateRoleCommand({ RoleName: 'app', AssumeRolePolicyDocument: trust })))
      .Role!
    await moto.iam.send(new PutRolePolicyCommand({ RoleName: 'app', PolicyName: 'all', PolicyDocument: allow('*') }))
    await write(core, 'aws/roles/app', {
      credential_type: 'assumed_role',
      role_arns: role.Arn!,
      default_sts_ttl: '15m',
      max_sts_ttl: '1h',
    })
    for (const path of ['aws/creds/app', 'aws/sts/app']) {
      const result = await core.read(path)
      const creds = parse(result)
      t.same(Object.keys(creds), ['access_key', 'secret_key', 'security_token', 'arn'])
      t.ok(creds.security_token)
      t.match(await whoami(keys(creds)), `:assumed-role/app/secretfs-app-`, `${path}: the keys authenticate`)
      t.ok(result.lease)
      await backend.revoke!(result.lease!)
      t.match(await whoami(keys(creds)), ':assumed-role/app/', 'STS credentials outlive a revocation: they expire')
    }
    const { backend: other } = direct(core, entry)
    t.match((await other.read('creds/app')).lease, { ttl: 900, maxTtl: 900, renewable: false, data: { kind: 'sts' } })
    await t.rejects(
      other.renew!(leaseOf({ lease: { ttl: 1, maxTtl: 1, renewable: false, data: { kind: 'sts' } } }), 60),
      kind('unsupported'),
    )
  })

  t.test('federation and session tokens have the STS shape and TTL', async (t) => {
    const { core, entry } = await setup(t)
    await write(core, 'aws/roles/fed', {
      credential_type: 'federation_token',
      policy_document: allow('s3:*'),
      default_sts_ttl: '30m',
      max_sts_ttl: '1h',
    })
    await write(core, 'aws/roles/session', { credential_type: 'session_token' })
    const { backend } = direct(core, entry)
    for (const [name, ttl] of [
      ['fed', 1800],
      ['session', 3600],
    ] as const) {
      for (const via of ['creds', 'sts']) {
        const result = await backend.read(`${via}/${name}`)
        const creds = parse(result)
        t.same(Object.keys(creds), ['access_key', 'secret_key', 'security_token'])
        t.match(creds, { access_key: /^\w{16,}$/, secret_key: /.{20,}/, security_token: /.{20,}/ })
        t.match(result, { generated: true, readOnly: true })
        t.same(result.lease, { ttl, maxTtl: ttl, renewable: false, data: { kind: 'sts' } }, `${via}/${name}`)
      }
    }
    t.ok((await core.read('aws/sts/fed')).lease)
  })

  t.test('AWS refusals are clear upstream errors, and leave no user and no record', async (t) => {
    const { core, storage } = await setup(t, { ...moto.rootConfig, secret_key: 'not-the-secret-key-of-admin-00000000' })
    await write(core, 'aws/roles/deploy', { policy: allow('*') })
    const e = await core.read('aws/creds/deploy').catch((e: Error) => e)
    t.match(e, kind('upstream', /^AWS refused CreateUser: SignatureDoesNotMatch \(/))
    t.notMatch((e as Error).message, 'not-the-secret-key', 'the message has no secret key')

    await write(core, 'aws/config/root', { ...moto.rootConfig, access_key: 'AKIAUNKNOWNUNKNOWN00' })
    await t.rejects(
      core.read('aws/creds/deploy'),
      kind(
        'upstream',
        /^AWS refused CreateUser: InvalidClientTokenId \(The security token included in the request is invalid/,
      ),
    )

    // After CreateUser: the user is deleted again before the error is given.
    await write(core, 'aws/config/root', moto.rootConfig)
    await write(core, 'aws/roles/deploy', {
      credential_type: 'iam_user',
      policy_arns: `arn:aws:iam::${account}:policy/no-such-policy`,
    })
    const refused = await core.read('aws/creds/deploy').catch((e: Error) => e)
    t.match(refused, kind('upstream', /^AWS refused AttachUserPolicy: NoSuchEntity \(/))
    t.notMatch((refused as Error).message, /secretfs-deploy/, 'the message does not name the user')
    t.same(await users(), [], 'no user left')
    await write(core, 'aws/roles/deploy', { credential_type: 'iam_user', policy_arns: '', iam_groups: 'no-such-group' })
    await t.rejects(core.read('aws/creds/deploy'), kind('upstream', /^AWS refused AddUserToGroup: NoSuchEntity/))
    t.same(await users(), [], 'no user left')
    t.same(await listWal(storage), [], 'no write-ahead record left')
  })

  t.test('recover() deletes the users that write-ahead records name, and drops the records', async (t) => {
    const { core, storage, backend } = await setup(t)
    // As a daemon that died after CreateUser: a record, a user with a key, a policy and a group.
    const username = 'secretfs-deploy-1700000000-abcdefghijABCDEFGHIJ'
    await putWal(storage, { kind: 'iam_user', username })
    await moto.iam.send(new CreateUserCommand({ UserName: username }))
    await moto.iam.send(new CreateAccessKeyCommand({ UserName: username }))
    await moto.iam.send(new PutUserPolicyCommand({ UserName: username, PolicyName: 'p', PolicyDocument: allow('*') }))
    const policy = (
      await moto.iam.send(new CreatePolicyCommand({ PolicyName: 'recover-me', PolicyDocument: allow('s3:*') }))
    ).Policy!.Arn!
    await moto.iam.send(new AttachUserPolicyCommand({ UserName: username, PolicyArn: policy }))
    await moto.iam.send(new CreateGroupCommand({ GroupName: 'recover-group' }))
    await moto.iam.send(new AddUserToGroupCommand({ UserName: username, GroupName: 'recover-group' }))
    // And one that died before CreateUser: nothing to delete.
    await putWal(storage, { kind: 'iam_user', username: 'secretfs-deploy-1700000000-neverMadeneverMade00' })

    // A failure keeps the records for the next unseal, and says so.
    await write(core, 'aws/config/root', { ...moto.rootConfig, secret_key: 'wrong-wrong-wrong-wrong-wrong-wrong-0' })
    await t.rejects(
      backend.recover!(),
      kind('upstream', /half-made IAM users could not be deleted; the next unseal tries again/),
    )
    t.equal((await listWal(storage)).length, 2)
    t.same(await users(), [username])

    await write(core, 'aws/config/root', moto.rootConfig)
    await backend.recover!()
    t.same(await listWal(storage), [])
    t.same(await users(), [])
    t.same((await moto.iam.send(new GetGroupCommand({ GroupName: 'recover-group' }))).Users, [])
    t.same((await moto.iam.send(new ListEntitiesForPolicyCommand({ PolicyArn: policy }))).PolicyUsers, [])
    await backend.recover!()
    t.pass('nothing to recover is success')
  })

  t.test('when AWS is down, a read fails with a clear upstream error and keeps its record', async (t) => {
    const { core, storage, backend } = await setup(t)
    await write(core, 'aws/roles/deploy', { policy: allow('*') })
    await moto.stop()
    await t.rejects(
      core.read('aws/creds/deploy'),
      kind('upstream', /^AWS could not be reached for CreateUser: ECONNREFUSED/),
    )
    // Whether CreateUser was done cannot be known: the record stays for recover() at the next unseal.
    t.equal((await listWal(storage)).length, 1)
    await t.rejects(backend.recover!(), kind('upstream', /could not be reached/))
    t.equal((await listWal(storage)).length, 1)
  })
}

/** A Lease for a read's lease request, as the core would store it. */
function leaseOf(r: Pick<ReadResult, 'lease'>): Lease {
  const now = new Date()
  return {
    id: 'aws/creds/x/0',
    path: 'creds/x',
    issued: now,
    expires: now,
    maxExpires: now,
    renewable: r.lease!.renewable,
    data: r.lease!.data,
  }
}
