import t from 'tap'
import type { Unlock } from '../../src/barrier/seal-config.js'
import { readUnsealBody } from '../../src/api/unseal-body.js'
import { kind } from '../helpers/error-match.js'

const read = (body: string | Buffer): Unlock => readUnsealBody(Buffer.isBuffer(body) ? body : Buffer.from(body))
const passphrase = (body: string | Buffer): string => {
  const u = read(body)
  if (u.kind !== 'passphrase') throw new Error(`a ${u.kind}`)
  return Buffer.from(u.passphrase).toString('utf8')
}
const NOT_JSON = kind('invalid', /^the request body is not valid JSON$/)
const NOT_OBJECT = kind('invalid', /^the request body must be a JSON object$/)
const EITHER = kind('invalid', /^give either key \(the 32-byte key, base64-encoded\) or passphrase$/)
const BAD_KEY = kind('invalid', /^key must be the 32-byte key, base64-encoded$/)
const BAD_PASSPHRASE = kind('invalid', /^passphrase must be a non-empty string$/)

t.test('a passphrase, as UTF-8 bytes, with every JSON escape decoded', async (t) => {
  t.equal(passphrase('{"passphrase":"correct horse"}'), 'correct horse')
  t.equal(passphrase(' \r\n\t{ "passphrase" : "x" } \n'), 'x', 'whitespace around every token')
  t.equal(passphrase(String.raw`{"passphrase":"q\"b\\s\/\b\f\n\r\t"}`), 'q"b\\s/\b\f\n\r\t')
  t.equal(passphrase(String.raw`{"passphrase":"\u0041\u00e9\u20AC"}`), 'Aé€', '\\u escapes, either case')
  t.equal(passphrase('{"passphrase":"héllo €"}'), 'héllo €', 'raw UTF-8 is kept as it is')
  t.equal(passphrase(String.raw`{"passphrase":"\ud83d\udd11 key"}`), '🔑 key', 'a surrogate pair is one code point')
  t.same(read(String.raw`{"passphrase":"\ud83d\udd11"}`), {
    kind: 'passphrase',
    passphrase: Buffer.from([0xf0, 0x9f, 0x94, 0x91]),
  })
  t.equal(passphrase('{"passphrase":"🔑"}'), '🔑', 'a raw four-byte sequence')
  t.equal(passphrase(String.raw`{"pass\u0070hrase":"n"}`), 'n', 'a member name may be escaped too')
})

t.test('the secret lands in sodium secure memory, exactly its length', async (t) => {
  const u = read('{"passphrase":"abc"}')
  t.equal(u.kind === 'passphrase' && u.passphrase.length, 3)
  // sodium_malloc'd buffers are not views on the shared pool: their own ArrayBuffer, their size.
  t.equal(u.kind === 'passphrase' && u.passphrase.buffer.byteLength, 3)
})

t.test('a key: base64 of exactly 32 bytes, padded or not, escapes decoded first', async (t) => {
  const key = Buffer.alloc(32)
  for (let i = 0; i < 32; i++) key[i] = (i * 37 + 11) & 0xff
  const b64 = key.toString('base64')
  t.same(read(JSON.stringify({ key: b64 })), { kind: 'key-file', key })
  t.same(read(JSON.stringify({ key: b64.replace(/=+$/, '') })), { kind: 'key-file', key }, 'without padding')
  const escaped =
    '{"key":"' + [...b64].map((c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')).join('') + '"}'
  t.same(read(escaped), { kind: 'key-file', key }, 'every character escaped')
  t.same(read(JSON.stringify({ key: b64 }).replace(/\//g, '\\/')), { kind: 'key-file', key }, '\\/ for /')

  t.throws(() => read('{"key":"c2hvcnQ="}'), BAD_KEY, 'too short')
  t.throws(() => read(JSON.stringify({ key: Buffer.alloc(33).toString('base64') })), BAD_KEY, 'too long')
  t.throws(() => read(JSON.stringify({ key: b64.slice(0, -2) + '-_' })), BAD_KEY, 'the URL alphabet')
  t.throws(() => read(JSON.stringify({ key: '=' + b64.slice(1) })), BAD_KEY, 'padding first')
  t.throws(() => read(JSON.stringify({ key: b64.slice(0, -1) + '===' })), BAD_KEY, 'three padding characters')
  t.throws(() => read(JSON.stringify({ key: b64 + ' ' })), BAD_KEY, 'a space')
  t.throws(() => read('{"key":""}'), BAD_KEY)
  t.throws(() => read('{"key":32}'), BAD_KEY, 'not a string')
  t.throws(() => read('{"key":null}'), BAD_KEY, 'null is a value given')
})

t.test('what JSON.parse refuses is not valid JSON', async (t) => {
  for (const body of [
    '{"passphrase": ',
    '{"passphrase":"x"',
    '{"passphrase":"x",}',
    '{"passphrase":"x"} {}',
    '{"passphrase":"x"}x',
    "{'passphrase':'x'}",
    '{passphrase:"x"}',
    '{"passphrase":"a\nb"}',
    '{"passphrase":"a\tb"}',
    String.raw`{"passphrase":"\x41"}`,
    String.raw`{"passphrase":"\u12"}`,
    String.raw`{"passphrase":"\u12G4"}`,
    '{"passphrase":"x","n":01}',
    '{"passphrase":"x","n":1.}',
    '{"passphrase":"x","n":-}',
    '{"passphrase":"x","n":1e}',
    '{"passphrase":"x","n":+1}',
    '{"passphrase":"x","n":tru}',
    '{"passphrase":"x","n":[1,]}',
    '{"passphrase":"x","n":{"a"}}',
    '{"passphrase":"x","n":NaN}',
    ' ',
    'tru',
    '"abc',
    '-',
    '{',
    '{"passphrase"',
    '{"passphrase":',
    String.raw`{"passphrase":"\u00`,
    '{"passphrase":"\\',
    '\u00a0{"passphrase":"x"}',
  ])
    t.throws(() => read(body), NOT_JSON, JSON.stringify(body))
  t.throws(() => read(Buffer.from('{"passphrase":"\xff"}', 'latin1')), NOT_JSON, 'bytes that are not UTF-8')
  t.throws(
    () => read(Buffer.from([...Buffer.from('{"passphrase":"'), 0xc0, 0x80, ...Buffer.from('"}')])),
    NOT_JSON,
    'an overlong encoding',
  )
  t.throws(
    () => read(Buffer.from([...Buffer.from('{"passphrase":"'), 0xed, 0xa0, 0x80, ...Buffer.from('"}')])),
    NOT_JSON,
    'a surrogate encoded in UTF-8',
  )
  t.throws(
    () => read(Buffer.from([...Buffer.from('{"passphrase":"'), 0xe2, 0x82, ...Buffer.from('"}')])),
    NOT_JSON,
    'a truncated sequence',
  )
  t.throws(
    () => read('{"n":' + '['.repeat(100_000) + ']'.repeat(100_000) + ',"passphrase":"x"}'),
    kind('invalid', /^the request body is nested more than 32 levels deep$/),
    'nesting deep enough to exhaust a stack',
  )
})

t.test('valid JSON that is not an object, or not what unseal takes', async (t) => {
  for (const body of ['[]', '"passphrase"', '1', 'null', 'true', '[{"passphrase":"x"}]'])
    t.throws(() => read(body), NOT_OBJECT, body)
  t.throws(() => read(''), EITHER, 'an empty body is an empty object')
  t.throws(() => read('{}'), EITHER)
  t.throws(() => read('{"key":"a","passphrase":"b"}'), EITHER, 'both')
  t.throws(() => read('{"passphrase":""}'), BAD_PASSPHRASE)
  t.throws(() => read('{"passphrase":7}'), BAD_PASSPHRASE)
  t.throws(() => read('{"passphrase":["x"]}'), BAD_PASSPHRASE)
  t.throws(
    () => read(String.raw`{"passphrase":"a\ud800b"}`),
    kind(
      'invalid',
      /^passphrase is not valid Unicode: \\ud800 stands alone; give a surrogate pair or the character itself$/,
    ),
    'a lone high surrogate',
  )
  t.throws(
    () => read(String.raw`{"passphrase":"\udc00"}`),
    kind('invalid', /\\udc00 stands alone/),
    'a lone low surrogate',
  )
  t.throws(() => read(String.raw`{"passphrase":"\ud800\u0041"}`), kind('invalid', /\\ud800 stands alone/))
})

t.test('duplicate fields are refused, other fields are checked and ignored', async (t) => {
  t.throws(
    () => read('{"passphrase":"a","passphrase":"b"}'),
    kind('invalid', /^the request body gives passphrase more than once; give it once$/),
  )
  t.throws(
    () => read(String.raw`{"key":"a","k\u0065y":"b"}`),
    kind('invalid', /gives key more than once/),
    'the same name, escaped',
  )
  t.throws(() => read('{"reset":false,"reset":true,"passphrase":"p"}'), kind('invalid', /gives a field more than once/))
  t.throws(() => read('{"passphrase":"a","passphrase":"b",}'), NOT_JSON, 'invalid JSON is said first')
  t.equal(
    passphrase('{"reset":false,"migrate":false,"n":-1.5e+3,"o":{"a":[1,{"b":null}],"c":"\\u0000"},"passphrase":"p"}'),
    'p',
    "Vault's reset and migrate, and anything else, are ignored",
  )
})
