// The aws backend's paths without AWS: config/root hides its secret key, config/lease speaks
// Vault's durations, roles follow Vault's rules, and every refused write says why and stores nothing.
import t, { type Test } from 'tap'
import { Core } from '../../../src/core/core.js'
import { encodeFields } from '../../../src/core/secret-data.js'
import { kind } from '../../helpers/error-match.js'

const text = async (core: Core, p: string) => Buffer.from((await core.read(p)).value).toString()
const json = async (core: Core, p: string) => JSON.parse(await text(core, p)) as Record<string, unknown>
const write = (core: Core, p: string, fields: Record<string, unknown>) => core.write(p, encodeFields(fields))
const raw = (core: Core, p: string, body: string) => core.write(p, Buffer.from(body))

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
const POLICY = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ec2:*', Resource: '*' }] }

async function awsCore(t: Test): Promise<Core> {
  const core = await Core.dev()
  t.teardown(() => core.close())
  await core.mount('aws', 'aws')
  return core
}

t.test('config/root is stored, and read back without secret_key', async (t) => {
  const core = await awsCore(t)
  t.equal(await core.stat('aws/config/root'), undefined, 'nothing before it is written')
  await t.rejects(core.read('aws/config/root'), kind('not-found', /config\/root is not set/))
  await write(core, 'aws/config/root', { access_key: 'AKIAEXAMPLE', secret_key: SECRET, region: 'eu-west-1' })
  const shown = await text(core, 'aws/config/root')
  t.notMatch(shown, SECRET)
  t.same(JSON.parse(shown), {
    access_key: 'AKIAEXAMPLE',
    region: 'eu-west-1',
    iam_endpoint: '',
    sts_endpoint: '',
    max_retries: -1,
  })
  t.match(await core.stat('aws/config/root'), { kind: 'file', size: Buffer.byteLength(shown) })
  t.same(await core.list('aws/config'), ['root'])

  // key=value lines, as a program writing the file would give them.
  await raw(core, 'aws/config/root', `# root keys\naccess_key=AKIAOTHER\n\nsecret_key=${SECRET}\nmax_retries=2\n`)
  t.match(await json(core, 'aws/config/root'), { access_key: 'AKIAOTHER', region: '', max_retries: 2 })

  // Giving neither key means the daemon's own AWS credentials.
  await write(core, 'aws/config/root', { region: 'us-west-2' })
  t.match(await json(core, 'aws/config/root'), { access_key: '', region: 'us-west-2' })
})

t.test('a refused config/root write says why, never echoes the secret, and stores nothing', async (t) => {
  const core = await awsCore(t)
  await write(core, 'aws/config/root', { access_key: 'AKIAKEEP', secret_key: SECRET })
  const before = await text(core, 'aws/config/root')
  const cases: [Record<string, unknown> | string, RegExp][] = [
    [{ access_key: 'AKIAX', secret_key: SECRET, colour: 'red' }, /has no field "colour"; its fields are access_key/],
    [{ access_key: 'AKIAX' }, /access_key and secret_key go together/],
    [{ secret_key: SECRET }, /access_key and secret_key go together/],
    [{ access_key: 'AKIAX', secret_key: SECRET, max_retries: 'many' }, /max_retries must be a whole number/],
    [{ access_key: 'AKIAX', secret_key: SECRET, max_retries: '-2' }, /max_retries must be -1/],
    [{ access_key: 'AKIAX', secret_key: SECRET, iam_endpoint: 'not a url' }, /iam_endpoint must be a URL/],
    [{ access_key: 'AKIAX', secret_key: SECRET, sts_endpoint: 'ftp://x' }, /sts_endpoint must be an http or https URL/],
    [{ access_key: 'AKIAX', secret_key: SECRET, region: 'Mars 1' }, /region must be an AWS region name/],
    [{ access_key: 'AKIAX', secret_key: 7 }, /secret_key must be text/],
    [`{"access_key": "AKIAX", "secret_key": "${SECRET}"`, /looks like JSON but does not parse/],
    [`access_key=AKIAX\n${SECRET}\n`, /line 2 of the root configuration \(config\/root\) is not key=value/],
    [`secret_key=${SECRET}\nsecret_key=${SECRET}\n`, /field "secret_key" is given twice/],
  ]
  for (const [body, message] of cases) {
    const attempt = typeof body === 'string' ? raw(core, 'aws/config/root', body) : write(core, 'aws/config/root', body)
    const e = await attempt.then(
      () => undefined,
      (e: Error) => e,
    )
    t.match(e, kind('invalid', message), String(message))
    t.notMatch(e?.message ?? '', SECRET.slice(0, 12), 'the message does not carry the secret')
  }
  t.equal(await text(core, 'aws/config/root'), before, 'the configuration is unchanged')
})

t.test('config/lease takes durations and shows them as Vault does', async (t) => {
  const core = await awsCore(t)
  await write(core, 'aws/config/lease', { lease: '1h', lease_max: '768h' })
  t.same(await json(core, 'aws/config/lease'), { lease: '1h0m0s', lease_max: '768h0m0s' })
  await write(core, 'aws/config/lease', { lease: '90', lease_max: '0' })
  t.same(await json(core, 'aws/config/lease'), { lease: '1m30s', lease_max: '0s' })
  for (const [fields, message] of [
    [{ lease_max: '1h' }, /'lease' is a required field/],
    [{ lease: '1h' }, /'lease_max' is a required field/],
    [{ lease: 'soon', lease_max: '1h' }, /lease must be a number of seconds or a duration/],
    [{ lease: '2h', lease_max: '1h' }, /lease must not exceed lease_max/],
  ] as const)
    await t.rejects(write(core, 'aws/config/lease', fields), kind('invalid', message), String(message))
  t.same(await json(core, 'aws/config/lease'), { lease: '1m30s', lease_max: '0s' }, 'unchanged')
})

t.test('roles are written and read in Vault shape, and read back writes back unchanged', async (t) => {
  const core = await awsCore(t)
  await write(core, 'aws/roles/deploy', {
    credential_type: 'iam_user',
    policy_document: JSON.stringify(POLICY, null, 2),
    policy_arns: 'arn:aws:iam::aws:policy/ReadOnlyAccess, arn:aws:iam::123456789012:policy/mine',
    iam_groups: '["devs","ops"]',
    iam_tags: 'team=web,env=dev',
    user_path: '/secretfs/',
    permissions_boundary_arn: 'arn:aws:iam::123456789012:policy/boundary',
  })
  const deploy = await json(core, 'aws/roles/deploy')
  t.same(deploy, {
    credential_type: 'iam_user',
    policy_arns: ['arn:aws:iam::aws:policy/ReadOnlyAccess', 'arn:aws:iam::123456789012:policy/mine'],
    role_arns: [],
    policy_document: JSON.stringify(POLICY),
    iam_groups: ['devs', 'ops'],
    iam_tags: { team: 'web', env: 'dev' },
    session_tags: {},
    external_id: '',
    default_sts_ttl: 0,
    max_sts_ttl: 0,
    user_path: '/secretfs/',
    permissions_boundary_arn: 'arn:aws:iam::123456789012:policy/boundary',
    key_ready_timeout: 30,
  })
  await raw(core, 'aws/roles/deploy', await text(core, 'aws/roles/deploy'))
  t.same(await json(core, 'aws/roles/deploy'), deploy, 'the read, written back, changes nothing')

  // A write updates the fields it gives, as Vault's does.
  await write(core, 'aws/roles/deploy', { iam_groups: '' })
  t.match(await json(core, 'aws/roles/deploy'), { iam_groups: [], policy_document: JSON.stringify(POLICY) })

  await raw(
    core,
    'aws/roles/assume',
    'credential_type=assumed_role\nrole_arns=arn:aws:iam::123456789012:role/app\ndefault_sts_ttl=15m\nmax_sts_ttl=1h\nsession_tags=a=1\nexternal_id=xyz\n',
  )
  t.match(await json(core, 'aws/roles/assume'), {
    credential_type: 'assumed_role',
    role_arns: ['arn:aws:iam::123456789012:role/app'],
    default_sts_ttl: 900,
    max_sts_ttl: 3600,
    session_tags: { a: '1' },
    external_id: 'xyz',
  })
  await write(core, 'aws/roles/fed', { credential_type: 'federation_token', policy_document: JSON.stringify(POLICY) })
  await write(core, 'aws/roles/session', { credential_type: 'session_token', default_sts_ttl: '900' })

  t.same(await core.list('aws/roles'), ['assume', 'deploy', 'fed', 'session'])
  t.same(await core.list('aws/creds'), ['assume', 'deploy', 'fed', 'session'])
  t.same(await core.list('aws/sts'), ['assume', 'fed', 'session'], 'sts/ lists the roles that make STS credentials')
  t.same(await core.list('aws/'), ['config/', 'creds/', 'current/', 'roles/', 'sts/'])
  t.match(await core.stat('aws/creds/deploy'), { kind: 'file', generated: true, readOnly: true, size: 1 << 16 })
  t.equal(await core.stat('aws/sts/deploy'), undefined)
  t.equal(await core.stat('aws/creds/none'), undefined)

  await core.delete('aws/roles/fed')
  t.same(await core.list('aws/roles'), ['assume', 'deploy', 'session'])
  await t.rejects(core.delete('aws/roles/fed'), kind('not-found'))
  await t.rejects(core.read('aws/roles/fed'), kind('not-found'))
})

t.test('key_ready_timeout: 30 s for iam_user roles unless set, 0 for STS roles, and shown', async (t) => {
  const core = await awsCore(t)
  const iamUser = { credential_type: 'iam_user', policy_document: JSON.stringify(POLICY) }
  await write(core, 'aws/roles/deploy', iamUser)
  t.match(await json(core, 'aws/roles/deploy'), { key_ready_timeout: 30 }, 'the default')
  await write(core, 'aws/roles/deploy', { key_ready_timeout: '1m30s' })
  t.match(await json(core, 'aws/roles/deploy'), { key_ready_timeout: 90 })
  await write(core, 'aws/roles/deploy', { key_ready_timeout: '0' })
  t.match(await json(core, 'aws/roles/deploy'), { key_ready_timeout: 0 }, '0 turns the wait off')
  await raw(core, 'aws/roles/deploy', await text(core, 'aws/roles/deploy'))
  t.match(await json(core, 'aws/roles/deploy'), { key_ready_timeout: 0 }, 'and stays off when written back')
  await write(core, 'aws/roles/legacy', { policy: JSON.stringify(POLICY) })
  t.match(await json(core, 'aws/roles/legacy'), { key_ready_timeout: 30 }, 'a legacy policy role waits too')

  await write(core, 'aws/roles/session', { credential_type: 'session_token' })
  t.match(await json(core, 'aws/roles/session'), { key_ready_timeout: 0 }, 'an STS role waits for nothing')
  await raw(core, 'aws/roles/session', await text(core, 'aws/roles/session'))
  t.match(await json(core, 'aws/roles/session'), { key_ready_timeout: 0 }, 'and its read writes back')
  // Its 0 is no setting: made an iam_user role, it waits as any does.
  await write(core, 'aws/roles/session', iamUser)
  t.match(await json(core, 'aws/roles/session'), { key_ready_timeout: 30 })
})

t.test('the legacy policy and arn fields, and a bare policy document, make Vault legacy roles', async (t) => {
  const core = await awsCore(t)
  // `cp policy.json ROOT/aws/roles/deploy`
  await raw(core, 'aws/roles/deploy', JSON.stringify(POLICY, null, 2))
  t.match(await json(core, 'aws/roles/deploy'), {
    credential_type: 'iam_user,federation_token',
    policy_document: JSON.stringify(POLICY),
  })
  t.same(await core.list('aws/sts'), ['deploy'], 'a legacy policy role also makes federation tokens from sts/')
  await raw(core, 'aws/roles/deploy', await text(core, 'aws/roles/deploy'))
  t.match(await json(core, 'aws/roles/deploy'), { credential_type: 'iam_user,federation_token' }, 'writes back')

  await write(core, 'aws/roles/legacy', { policy: JSON.stringify(POLICY) })
  t.match(await json(core, 'aws/roles/legacy'), { credential_type: 'iam_user,federation_token' })
  await write(core, 'aws/roles/managed', { arn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' })
  t.match(await json(core, 'aws/roles/managed'), {
    credential_type: 'iam_user',
    policy_arns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
  })
  await write(core, 'aws/roles/role', { arn: 'arn:aws:iam::123456789012:role/app' })
  t.match(await json(core, 'aws/roles/role'), {
    credential_type: 'assumed_role',
    role_arns: ['arn:aws:iam::123456789012:role/app'],
  })
  // Vault keeps legacy roles to the path they were read from.
  await t.rejects(
    core.read('aws/creds/role'),
    kind('invalid', /assumed_role credentials through the creds path; this is not allowed for legacy roles/),
  )
})

t.test('every refused role write says why and stores nothing', async (t) => {
  const core = await awsCore(t)
  const good = { credential_type: 'iam_user', policy_document: JSON.stringify(POLICY) }
  await write(core, 'aws/roles/keep', good)
  const kept = await text(core, 'aws/roles/keep')
  const arn = 'arn:aws:iam::123456789012:role/app'
  const cases: [Record<string, unknown> | string, RegExp][] = [
    [{ ...good, colour: 'red' }, /a role \(roles\/NAME\) has no field "colour"/],
    [
      { credential_type: 'root_user', policy_document: '{}' },
      /unknown credential_type "root_user"; it is one of iam_user/,
    ],
    [{ credential_type: 'iam_user,assumed_role', policy_document: '{}' }, /credential_type is one of/],
    [{ credential_type: 'iam_user', policy_document: '{"Statement": [' }, /policy_document is not valid JSON/],
    [{ policy: 'not json' }, /policy is not valid JSON/],
    [{ credential_type: 'assumed_role' }, /an assumed_role role needs role_arns/],
    [
      { credential_type: 'assumed_role', role_arns: arn, default_sts_ttl: '2h', max_sts_ttl: '1h' },
      /default_sts_ttl must be less than or equal to max_sts_ttl/,
    ],
    [{ credential_type: 'assumed_role', role_arns: arn, default_sts_ttl: 'soon' }, /default_sts_ttl must be a number/],
    [{ ...good, key_ready_timeout: 'soon' }, /key_ready_timeout must be a number of seconds or a duration/],
    [{ ...good, key_ready_timeout: '-1' }, /key_ready_timeout must be a number of seconds or a duration/],
    [{ ...good, key_ready_timeout: '6m' }, /key_ready_timeout must be at most 5m \(0 turns the wait off\)/],
    [
      { credential_type: 'assumed_role', role_arns: arn, key_ready_timeout: '10s' },
      /key_ready_timeout is only valid for iam_user roles: it waits for a new IAM user's access key/,
    ],
    [
      { credential_type: 'session_token', key_ready_timeout: '1m' },
      /key_ready_timeout is only valid for iam_user roles/,
    ],
    [{ credential_type: 'iam_user', policy_arns: 5 }, /policy_arns must be a list of names/],
    [{ credential_type: 'iam_user', policy_arns: '["a", 1]' }, /policy_arns must be a list of names/],
    [{ ...good, iam_tags: 'novalue' }, /iam_tags must be key=value pairs/],
    [{ ...good, iam_tags: { a: 1 } }, /iam_tags must be key=value pairs/],
    [
      { credential_type: 'iam_user', policy_document: '' },
      /an iam_user role needs at least one of policy_document, policy_arns or iam_groups/,
    ],
    [{ ...good, default_sts_ttl: '1h' }, /default_sts_ttl is only valid for assumed_role/],
    [{ ...good, max_sts_ttl: '1h' }, /max_sts_ttl is only valid for assumed_role/],
    [{ ...good, user_path: 'nope' }, /user_path must start and end with \//],
    [{ credential_type: 'assumed_role', role_arns: arn, user_path: '/a/' }, /user_path is only valid for iam_user/],
    [
      { ...good, permissions_boundary_arn: 'arn:aws:s3:::bucket' },
      /permissions_boundary_arn must be the ARN of an IAM policy/,
    ],
    [
      { credential_type: 'assumed_role', role_arns: arn, permissions_boundary_arn: 'arn:aws:iam::1:policy/b' },
      /permissions_boundary_arn is only valid for iam_user/,
    ],
    [{ credential_type: 'assumed_role', role_arns: arn, iam_tags: 'a=b' }, /iam_tags is only valid for iam_user/],
    [{ credential_type: 'assumed_role', role_arns: arn, iam_groups: 'g' }, /iam_groups is only supported for iam_user/],
    [{ ...good, role_arns: arn }, /cannot supply role_arns when credential_type isn't assumed_role/],
    [{ ...good, session_tags: 'a=b' }, /cannot supply session_tags/],
    [{ ...good, external_id: 'x' }, /cannot supply external_id/],
    [{ credential_type: 'session_token', policy_document: '{}' }, /cannot supply a policy .* session_token/],
    [
      { credential_type: 'federation_token', policy_document: '' },
      /a federation_token role needs policy_document or policy_arns/,
    ],
    [{ policy: '{}', arn: 'arn:aws:iam::1:policy/p' }, /only one of policy or arn should be provided/],
    [{ policy: '{}', user_path: '/' }, /cannot supply deprecated role or policy parameters with user_path/],
    [{ arn: 'arn:aws:s3:::bucket' }, /arn must be the ARN of an IAM policy .* or of a role/],
    ['{"credential_type": ', /looks like JSON but does not parse/],
    ['credential_type iam_user', /line 1 of a role \(roles\/NAME\) is not key=value/],
  ]
  for (const [body, message] of cases) {
    for (const path of ['aws/roles/keep', 'aws/roles/new']) {
      const attempt = typeof body === 'string' ? raw(core, path, body) : write(core, path, body)
      await t.rejects(attempt, kind('invalid', message), `${path}: ${message}`)
    }
  }
  t.equal(await text(core, 'aws/roles/keep'), kept, 'the existing role is unchanged')
  t.equal(await core.stat('aws/roles/new'), undefined, 'no new role was stored')
  t.same(await core.list('aws/roles'), ['keep'])

  await t.rejects(write(core, 'aws/roles/bad name!', good), kind('invalid', /a name in roles\/ is letters, digits/))
  await t.rejects(
    write(core, 'aws/elsewhere', good),
    kind('unsupported', /no such path; its paths are config\/root, config\/lease, roles\/NAME, creds\/NAME, sts\/NAME/),
  )
  await t.rejects(write(core, 'aws/creds/keep', good), kind('read-only'))
  await t.rejects(write(core, 'aws/roles', good), kind('is-dir'))
})

t.test('reading credentials without a role, or from the wrong path, says so and calls nothing', async (t) => {
  const core = await awsCore(t)
  await t.rejects(core.read('aws/creds/none'), kind('not-found', /no such role/))
  await t.rejects(core.read('aws/creds'), kind('is-dir'))
  await write(core, 'aws/roles/deploy', { credential_type: 'iam_user', policy_document: JSON.stringify(POLICY) })
  await t.rejects(
    core.read('aws/sts/deploy'),
    kind('invalid', /attempted to retrieve iam_user credentials through the sts path; read creds\/NAME/),
  )
  await write(core, 'aws/roles/two', {
    credential_type: 'assumed_role',
    role_arns: 'arn:aws:iam::123456789012:role/a,arn:aws:iam::123456789012:role/b',
  })
  await t.rejects(core.read('aws/creds/two'), kind('invalid', /several role_arns .* make a role for each ARN/))
})
