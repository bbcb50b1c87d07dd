import t from 'tap'
import { PathCipher } from '../../src/barrier/path-cipher.js'
import { kind } from '../helpers/error-match.js'

const key = Buffer.alloc(32, 7)

t.test('names round-trip, deterministically, and depend on their parent', async (t) => {
  const pc = new PathCipher(key)
  t.teardown(() => pc.dispose())
  for (const name of ['a', 'password', 'exactly-16-bytes', 'ünïcødé ✓', 'x'.repeat(255)]) {
    const e = pc.encodeName('logical/u/', name)
    t.equal(pc.decodeName('logical/u/', e), name)
    t.equal(pc.encodeName('logical/u/', name), e, 'deterministic')
    t.notOk(e.includes('/'), 'an encoded name has no slash')
  }
  t.not(pc.encodeName('a/', 'x'), pc.encodeName('b/', 'x'), 'the same name in two directories differs')
  t.equal(pc.encodeName('', 'a').length, pc.encodeName('', 'fifteen-bytes!!').length, 'lengths are padded')
})

t.test('a name decoded under another parent, or altered, is an integrity error', async (t) => {
  const pc = new PathCipher(key)
  t.teardown(() => pc.dispose())
  const e = pc.encodeName('a/', 'secret-name')
  t.throws(() => pc.decodeName('b/', e), kind('integrity'))
  const bytes = Buffer.from(e, 'base64url')
  bytes[30]! ^= 1
  t.throws(() => pc.decodeName('a/', bytes.toString('base64url')), kind('integrity'))
  t.throws(() => pc.decodeName('a/', 'short'), kind('integrity'))
})

t.test('keys and directories encode component by component', async (t) => {
  const pc = new PathCipher(key)
  t.teardown(() => pc.dispose())
  const dir = pc.encodeDir('logical/u/team/')
  t.equal(pc.encodeKey('logical/u/team/db'), dir + pc.encodeName('logical/u/team/', 'db'))
  t.equal(dir.split('/').length, 4)
  t.equal(pc.encodeDir(''), '')
})

t.test('another key gives other names', async (t) => {
  const a = new PathCipher(key)
  const b = new PathCipher(Buffer.alloc(32, 8))
  t.teardown(() => (a.dispose(), b.dispose()))
  t.not(a.encodeName('', 'x'), b.encodeName('', 'x'))
  t.throws(() => b.decodeName('', a.encodeName('', 'x')), kind('integrity'))
})

t.test('an encoded key or directory decodes back to its logical path', async (t) => {
  const pc = new PathCipher(Buffer.alloc(32, 9))
  t.teardown(() => pc.dispose())
  for (const key of ['core/mounts', 'logical/u/team/db', 'leases/u/id', 'a'])
    t.equal(pc.decodePath(pc.encodeKey(key)), key)
  t.equal(pc.decodePath(pc.encodeDir('logical/u/')), 'logical/u/')
  t.equal(pc.decodePath(''), '')
  const [first, second] = pc.encodeKey('a/b').split('/')
  t.throws(() => pc.decodePath(`${second}/${first}`), kind('integrity'), 'segments out of place fail')
})

t.test('lock ids are int32s, one per path, keyed', async (t) => {
  const pc = new PathCipher(key)
  const other = new PathCipher(Buffer.alloc(32, 8))
  t.teardown(() => {
    pc.dispose()
    other.dispose()
  })
  const paths = Array.from({ length: 200 }, (_, i) => `logical/u/static-role/r${i}`)
  const ids = paths.map((p) => pc.lockId(p))
  t.ok(
    ids.every((id) => Number.isInteger(id) && id >= -(2 ** 31) && id < 2 ** 31),
    'each fits PostgreSQL int4',
  )
  t.same(
    paths.map((p) => pc.lockId(p)),
    ids,
    'deterministic',
  )
  t.ok(new Set(ids).size >= 199, 'paths get their own')
  t.ok(paths.filter((p, i) => other.lockId(p) === ids[i]).length <= 1, 'another key gives other ids')
})
