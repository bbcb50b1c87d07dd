// The real CLI against a control API served in this process: `read --format env`, through the
// fast path and through yargs alike.
import { execFile } from 'node:child_process'
import t from 'tap'
import { withApi } from '../helpers/cli-run.js'

const { api, cli } = await withApi(t)
const HOSTILE = `it's "$HOME" \`id\`\nnext ☃`
await api.core.write('secret/app', Buffer.from(JSON.stringify({ 'user-name': HOSTILE, port: 5432, none: null })))
await api.core.write('secret/aws', Buffer.from('{"access_key":"AKIA1","secret_key":"s+/k","security_token":null}'))
await api.core.write('secret/text', Buffer.from('{not json'))

/** What sh has in `names` after eval of `lines`, NUL-separated. */
function evaluated(lines: string, names: string[]): Promise<string[]> {
  const script = `eval "$1"\n` + names.map((n) => `printf '%s\\0' "\${${n}-unset}"`).join('\n')
  return new Promise((resolve, reject) =>
    execFile('/bin/sh', ['-c', script, 'sh', lines], { env: { PATH: process.env.PATH, AWS_PROFILE: 'x' } }, (e, out) =>
      e ? reject(e) : resolve(out.split('\0').slice(0, -1)),
    ),
  )
}

for (const [how, env] of [
  ['fast path', {}],
  ['yargs', { SECRETFS_CLI_NO_FAST_PATH: '1' }],
] as const) {
  t.test(`${how}: export lines that eval sets exactly`, async (t) => {
    const r = await cli(['read', 'secret/app', '--format', 'env'], undefined, env)
    t.same([r.code, r.stderr], [0, ''])
    t.equal(r.stdout, `export USER_NAME='it'\\''s "$HOME" \`id\`\nnext ☃'\nexport PORT=5432\n`)
    t.same(await evaluated(r.stdout, ['USER_NAME', 'PORT', 'NONE']), [HOSTILE, '5432', 'unset'])

    const aws = await cli(['read', 'secret/aws', '--format=env'], undefined, env)
    t.equal(
      aws.stdout,
      'export AWS_ACCESS_KEY_ID=AKIA1\nexport AWS_SECRET_ACCESS_KEY=s+/k\n' +
        'unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_CREDENTIAL_EXPIRATION\n',
      'no lease, no expiry; what would win over the keys is unset',
    )
    t.same(await evaluated(aws.stdout, ['AWS_ACCESS_KEY_ID', 'AWS_PROFILE']), ['AKIA1', 'unset'])

    const text = await cli(['read', 'secret/text', '--format', 'env'], undefined, env)
    t.same([text.code, text.stdout], [1, ''])
    t.equal(
      text.stderr,
      'Error: the value at secret/text is not a JSON object of fields, so it makes no variables\n' +
        'Write it as fields (secretfs write secret/text NAME=VALUE ...), or, with exec, give its text to one variable: --env NAME=secret/text\n',
    )
    const field = await cli(['read', 'secret/app', '--format', 'env', '--field', 'port'], undefined, env)
    t.same([field.code, field.stderr], [1, 'Error: --field and --format env do not go together\n'])
    const missing = await cli(['read', 'secret/none', '--format', 'env'], undefined, env)
    t.same([missing.code, missing.stderr], [1, 'Error: No value found at secret/none\n'])
  })
}
