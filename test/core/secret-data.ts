import t from 'tap'
import { decodeUtf8, encodeFields, presentValue } from '../../src/core/secret-data.js'

t.test('fields written are read back as the same fields', async (t) => {
  const fields = { password: 'hunter2', user: 'ünïcode', n: 3, nested: { a: [1, 2] } }
  const bytes = encodeFields(fields)
  t.equal(Buffer.from(bytes).toString(), JSON.stringify(fields) + '\n', 'one JSON object and a newline')
  t.same(presentValue(bytes), { data: fields })
})

t.test('a value that is not a JSON object is one field, value', async (t) => {
  t.same(presentValue(Buffer.from('hunter2\n')), { data: { value: 'hunter2\n' } }, 'text kept exactly')
  t.same(presentValue(Buffer.from('')), { data: { value: '' } })
  t.same(presentValue(Buffer.from('[1,2]')), { data: { value: '[1,2]' } }, 'an array is not fields')
  t.same(presentValue(Buffer.from('42')), { data: { value: '42' } })
  t.same(presentValue(Buffer.from('null')), { data: { value: 'null' } })
  t.same(presentValue(Buffer.from('{not json')), { data: { value: '{not json' } })
  t.same(presentValue(Buffer.from('  {"a":"b"}\n')), { data: { a: 'b' } }, 'a JSON object written by a shell')
})

t.test('bytes that are not UTF-8 are given base64-encoded, and say so', async (t) => {
  const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x41])
  const p = presentValue(bytes)
  t.equal(p.encoding, 'base64')
  t.same(Buffer.from(p.data.value as string, 'base64'), bytes)
  t.equal(decodeUtf8(Buffer.from([0xc3])), undefined, 'a truncated sequence is not UTF-8')
  t.equal(decodeUtf8(Buffer.from('é')), 'é')
  t.equal(decodeUtf8(Buffer.from('\ufeffx')), '\ufeffx', 'a byte-order mark is kept')
})
