import t from 'tap'
import { parseDuration } from '../../src/api/duration.js'

t.test('seconds and durations', async (t) => {
  t.equal(parseDuration(0, 'x'), 0)
  t.equal(parseDuration(90, 'x'), 90)
  t.equal(parseDuration('90', 'x'), 90)
  t.equal(parseDuration('90s', 'x'), 90)
  t.equal(parseDuration('15m', 'x'), 900)
  t.equal(parseDuration('1h30m', 'x'), 5400)
  t.equal(parseDuration('2d', 'x'), 172800)
  for (const bad of [-1, 1.5, '1x', 'h', '', '1h 2m', null, {}])
    t.throws(
      () => parseDuration(bad, 'the max lease TTL'),
      { kind: 'invalid', message: /^the max lease TTL/ },
      String(bad),
    )
})
