// The daemon's log folds a failure that repeats (as every request does while the store is
// unreachable): written once, then how many more came, once its window ends.
import t from 'tap'
import { unavailable, notFound } from '../src/errors.js'
import { foldRepeats } from '../src/log.js'
import { captureLog } from './helpers/capture-log.js'

t.test('a repeated warning or error is written once, then counted', async (t) => {
  const lines = captureLog()
  const log = foldRepeats(lines, 100)
  for (let i = 0; i < 5; i++) log.error('a filesystem request failed', unavailable())
  log.error('a filesystem request failed', notFound())
  log.warn('a filesystem request failed', unavailable())
  log.info('mounted')
  log.info('mounted')
  t.same(lines.lines, [
    '[error] a filesystem request failed: unavailable: the store cannot be reached',
    '[error] a filesystem request failed: not-found: no such secret or directory',
    '[warn] a filesystem request failed: unavailable: the store cannot be reached',
    '[info] mounted',
    '[info] mounted',
  ])
  await new Promise((r) => setTimeout(r, 200))
  t.equal(
    lines.lines[5],
    '[error] a filesystem request failed (and 4 more like it since): unavailable: the store cannot be reached',
    'when the window ends, how many more came',
  )
  t.equal(lines.lines.length, 6, 'nothing for a line that did not repeat')
  log.error('a filesystem request failed', unavailable())
  t.equal(lines.lines.length, 7, 'after the window, the next is written at once')
})
