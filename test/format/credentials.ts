// One credential in every form: shell quoting read back by a real sh, variable names, the fields
// of a secret as variables (collisions refused), and what an AWS credential must hide.
import { execFile } from 'node:child_process'
import t from 'tap'
import {
  awsCredentialOf,
  awsShadowingVariables,
  awsVariables,
  credentialProcessJson,
  exportLines,
  fieldVariables,
  shellQuote,
  variableName,
} from '../../src/format/credentials.js'
import { kind } from '../helpers/error-match.js'

/** What `sh` makes of `script`'s output, run with `args` as $1... */
function sh(script: string, args: string[] = []): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('/bin/sh', ['-c', script, 'sh', ...args], { env: { PATH: process.env.PATH } }, (e, out) =>
      e ? reject(e) : resolve(out),
    ),
  )
}

const HOSTILE = [
  '',
  'plain',
  "it's",
  "''",
  '"double" quotes',
  'two  spaces and\ttab',
  'line\nbreak\n',
  '\n',
  '$HOME ${PATH} $(id) $((1+1))',
  '`id`',
  'back\\slash\\',
  '; rm -rf / #',
  '*?[a]~',
  '-n',
  'ünïcødé ☃ 𝄞 مرحبا',
  'a=b',
  '!event',
  '\x01\x7f',
]

t.test('shellQuote: sh reads every value back exactly', async (t) => {
  for (const value of HOSTILE) {
    t.equal(await sh(`printf %s ${shellQuote(value)}`), value, JSON.stringify(value))
  }
})

t.test('exportLines: eval of the lines sets each variable to its value exactly', async (t) => {
  const vars: [string, string][] = HOSTILE.map((v, i) => [`V${i}`, v])
  // Each value printed NUL-terminated, so that trailing newlines survive.
  const script = `eval "$1"\n` + vars.map(([n]) => `printf '%s\\0' "$${n}"`).join('\n')
  const out = await sh(script, [exportLines(vars)])
  t.same(out.split('\0').slice(0, -1), HOSTILE)
  t.match(exportLines([['A', 'x y']]), /^export A='x y'\n$/)
  t.equal(exportLines([['A', 'AKIA/x+y=']]), 'export A=AKIA/x+y=\n', 'a plain word goes unquoted')
})

t.test('variableName: upper-cased, other characters to _, a leading digit guarded', async (t) => {
  t.equal(variableName('user_name'), 'USER_NAME')
  t.equal(variableName('user-name.v2'), 'USER_NAME_V2')
  t.equal(variableName('pässword'), 'P_SSWORD')
  t.equal(variableName('2fa'), '_2FA')
  t.equal(variableName('name', 'db_'), 'DB_NAME')
  t.equal(variableName('name', 'my-app.'), 'MY_APP_NAME', 'the prefix is made a name too')
  t.equal(variableName('x', '1'), '_1X')
  t.equal(variableName('a b=c'), 'A_B_C')
  t.equal(variableName('$(id)'), '__ID_')
})

t.test('fieldVariables: each field, values that are not strings as JSON, null left out', async (t) => {
  t.same(fieldVariables({ user: 'u', port: 5432, tls: true, opts: { a: [1] }, none: null }), [
    ['USER', 'u'],
    ['PORT', '5432'],
    ['TLS', 'true'],
    ['OPTS', '{"a":[1]}'],
  ])
  t.same(fieldVariables({ user: 'u' }, { prefix: 'db_' }), [['DB_USER', 'u']])
  t.same(fieldVariables({}), [])
})

t.test('fieldVariables: two fields that make one name are refused, naming both', async (t) => {
  t.throws(
    () => fieldVariables({ 'user-name': 'a', user_name: 'b' }),
    kind('invalid', /"user-name" and "user_name" both make the variable USER_NAME/),
  )
  t.throws(() => fieldVariables({ Key: 'a', key: 'b' }), kind('invalid', /KEY/))
  t.throws(() => fieldVariables({ x: 'a', X: 'b' }, { prefix: 'p' }), kind('invalid', /PX/))
  // Names that are Object.prototype's keys are fields like any other.
  t.same(fieldVariables(JSON.parse('{"__proto__": "a", "constructor": "b"}')), [
    ['__PROTO__', 'a'],
    ['CONSTRUCTOR', 'b'],
  ])
})

t.test('an AWS credential: AWS_* in the CLI order, expiry from the lease, and what it hides', async (t) => {
  const fields = { access_key: 'AKIAX', secret_key: 's/k+', security_token: null }
  const expiration = new Date('2030-01-02T03:04:05Z')
  t.same(fieldVariables(fields, { expiration }), [
    ['AWS_ACCESS_KEY_ID', 'AKIAX'],
    ['AWS_SECRET_ACCESS_KEY', 's/k+'],
    ['AWS_CREDENTIAL_EXPIRATION', '2030-01-02T03:04:05.000Z'],
  ])
  const sts = { access_key: 'ASIAX', secret_key: 's', security_token: 'tok' }
  t.same(
    fieldVariables(sts).map(([n]) => n),
    ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'],
  )
  t.same(
    fieldVariables(fields, { prefix: 'prod_' }).map(([n]) => n),
    ['PROD_ACCESS_KEY', 'PROD_SECRET_KEY'],
    'with a prefix, the fields by name',
  )
  t.equal(awsCredentialOf({ access_key: '', secret_key: 's' }), undefined, 'an empty key is no credential')
  t.same(JSON.parse(credentialProcessJson(awsCredentialOf(sts, expiration)!)), {
    Version: 1,
    AccessKeyId: 'ASIAX',
    SecretAccessKey: 's',
    SessionToken: 'tok',
    Expiration: '2030-01-02T03:04:05.000Z',
  })

  t.same(awsShadowingVariables(fieldVariables(fields)), [
    'AWS_PROFILE',
    'AWS_DEFAULT_PROFILE',
    'AWS_SESSION_TOKEN',
    'AWS_SECURITY_TOKEN',
    'AWS_CREDENTIAL_EXPIRATION',
  ])
  t.same(
    awsShadowingVariables(awsVariables(awsCredentialOf(sts, expiration)!)),
    ['AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'AWS_SECURITY_TOKEN'],
    'what the credential sets itself is not hidden',
  )
  t.same(awsShadowingVariables([['USER', 'u']]), [], 'a secret that is no AWS credential hides nothing')
})
