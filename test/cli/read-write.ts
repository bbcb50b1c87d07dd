// The real CLI against a control API served in this process: read, write, list and delete, each
// through the fast path and through yargs, which must do the same.
import path from 'node:path'
import t from 'tap'
import { withApi } from '../helpers/cli-run.js'

const PARSERS = [
  ['the fast path', {}],
  ['yargs', { SECRETFS_CLI_NO_FAST_PATH: '1' }],
] as const

for (const [parser, env] of PARSERS)
  t.test(`write and read through ${parser}: fields, files, stdin, raw bytes, formats`, async (t) => {
    const { api, cli: run } = await withApi(t)
    const cli = (args: string[], input?: string | Buffer) => run(args, input, env)
    const dir = t.testdir({ 'cert.pem': '-----BEGIN-----\nabc\n', bin: Buffer.from([0xff, 0xfe, 0]) })
    const written = await cli(
      ['write', 'secret/db', 'user=app', 'password=p=w', `cert=@${path.join(dir, 'cert.pem')}`, 'note=-'],
      'from stdin\n',
    )
    t.same([written.code, written.stdout, written.stderr], [0, 'Success! Data written to: secret/db\n', ''])
    t.same(JSON.parse(Buffer.from((await api.core.read('secret/db')).value).toString()), {
      user: 'app',
      password: 'p=w',
      cert: '-----BEGIN-----\nabc\n',
      note: 'from stdin\n',
    })
    const table = await cli(['read', 'secret/db'])
    t.equal(table.stdout.split('\n')[0], 'Key         Value')
    t.match(table.stdout, /^---\s+-----$/m)
    t.match(table.stdout, /^password    p=w$/m)
    const json = JSON.parse((await cli(['read', 'secret/db', '--format', 'json'])).stdout)
    t.same(json, {
      lease_id: '',
      lease_duration: 0,
      renewable: false,
      data: { user: 'app', password: 'p=w', cert: '-----BEGIN-----\nabc\n', note: 'from stdin\n' },
    })
    t.equal((await cli(['read', 'secret/db', '--field', 'user', '--format', 'json'])).stdout, '"app"\n')
    const noField = await cli(['read', 'secret/db', '--field', 'nope'])
    t.same([noField.code, noField.stdout, noField.stderr], [1, '', 'Error: no field "nope" at secret/db\n'])

    const bytes = Buffer.from([0, 1, 2, 0xff, 0x80, 10])
    const raw = await cli(['write', 'secret/blob', '-'], bytes)
    t.same(
      [raw.code, raw.stdout, raw.stderr],
      [0, 'Success! Data written to: secret/blob\n', ''],
      'a lone - stores stdin',
    )
    t.same(Buffer.from((await api.core.read('secret/blob')).value), bytes)
    t.same((await cli(['read', 'secret/blob', '--format', 'raw'])).stdoutBytes, bytes, '--format raw gives the bytes')
    t.same((await cli(['read', 'secret/blob', '--field', 'value'])).stdoutBytes, bytes, '--field value decodes base64')
    const b64 = await cli(['read', 'secret/blob'])
    t.match(b64.stdout, new RegExp(`^value\\s+${bytes.toString('base64').replace(/[+/]/g, '\\$&')}$`, 'm'))
    t.match(b64.stderr, /not UTF-8 text: shown base64-encoded/)
    t.equal(
      (await cli(['read', 'secret/db', '--format', 'raw'])).stdout,
      Buffer.from((await api.core.read('secret/db')).value).toString(),
    )

    const bad = await cli(['write', 'secret/x', `k=@${path.join(dir, 'bin')}`])
    t.equal(bad.code, 1)
    t.match(bad.stderr, /not UTF-8 text/)
    t.equal((await cli(['list', 'secret/'])).stdout, 'Keys\n----\nblob\ndb\n')
    t.same(JSON.parse((await cli(['list', 'secret/', '--format', 'json'])).stdout), ['blob', 'db'])
    t.equal((await cli(['delete', 'secret/db'])).stdout, 'Success! Data deleted at: secret/db\n')
    t.same(await api.core.list('secret/'), ['blob'])
    const gone = await cli(['delete', 'secret/db'])
    t.equal(gone.code, 1)
    t.match(gone.stderr, /^Error deleting secret\/db: /)
  })

t.test('field names are data: __proto__, constructor and toString are kept and read back', async (t) => {
  const { api, cli } = await withApi(t)
  const names = ['__proto__', 'constructor', 'toString']
  // The fast path and the yargs path parse the same command line.
  for (const env of [{}, { SECRETFS_CLI_NO_FAST_PATH: '1' }]) {
    const w = await cli(['write', 'secret/h', '__proto__=p', 'constructor=c', 'toString=s'], undefined, env)
    t.equal(w.code, 0, w.stderr)
    const stored = JSON.parse(Buffer.from((await api.core.read('secret/h')).value).toString()) as object
    t.same(
      names.map((n) => [Object.hasOwn(stored, n), (stored as Record<string, unknown>)[n]]),
      [
        [true, 'p'],
        [true, 'c'],
        [true, 's'],
      ],
      'every field stored as an own field',
    )
    t.equal((await cli(['read', 'secret/h', '--field', '__proto__'], undefined, env)).stdout, 'p')
    t.match((await cli(['read', 'secret/h'], undefined, env)).stdout, /^__proto__\s+p$/m)
  }
  await api.core.write('secret/plain', Buffer.from('{"a":"b"}'))
  for (const field of ['constructor', 'valueOf', '__proto__', 'hasOwnProperty']) {
    const r = await cli(['read', 'secret/plain', '--field', field])
    t.same([r.code, r.stdout, r.stderr], [1, '', `Error: no field "${field}" at secret/plain\n`], field)
  }
})
