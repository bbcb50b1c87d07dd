import t from 'tap'
import { Keyring } from '../../src/barrier/keyring.js'
import { kind } from '../helpers/error-match.js'

t.test('rotation adds terms; serialise and parse keep every term', async (t) => {
  const ring = Keyring.create()
  t.equal(ring.activeTerm, 1)
  const k1 = Buffer.from(ring.key(1)!)
  t.equal(ring.rotate(), 2)
  t.equal(ring.rotate(), 3)
  t.notSame(Buffer.from(ring.key(3)!), k1, 'a new term has a new key')
  const plain = ring.serialize()
  const again = Keyring.parse(plain.bytes)
  plain.dispose()
  t.equal(again.activeTerm, 3)
  t.same(
    again.terms().map((x) => x.term),
    [1, 2, 3],
  )
  t.same(Buffer.from(again.key(1)!), k1)
  t.same(Buffer.from(again.pathKey.bytes), Buffer.from(ring.pathKey.bytes))
  t.equal(again.key(4), undefined)
  ring.dispose()
  again.dispose()
  t.throws(() => ring.pathKey.bytes, { message: 'key used after dispose' }, 'keys are unusable after dispose')
})

t.test('undoRotate restores the previous term', async (t) => {
  const ring = Keyring.create()
  const term = ring.rotate()
  ring.undoRotate(term)
  t.equal(ring.activeTerm, 1)
  t.equal(ring.key(term), undefined)
  ring.dispose()
})

t.test('a malformed keyring is an integrity error', async (t) => {
  t.throws(() => Keyring.parse(Buffer.alloc(10)), kind('integrity'))
})
