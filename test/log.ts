// The daemon's log folds a failure to reach the store that repeats (as every request does while
// the store is unreachable): written once, then how many more came, once its window ends. Every
// other line is written as it comes.
import t from 'tap'
import { unavailable, notFound } from '../src/errors.js'
import { foldRepeats } from '../src/log.js'
import { captureLog } from './helpers/capture-log.js'

t.test('a repeated failure to reach the store is written once, then counted', async (t) => {
  const lines = captureLog()
  const log = foldRepeats(lines, 100)
  for (let i = 0; i < 5; i++) log.error('a filesystem request failed', unavailable())
  log.warn('a filesystem request failed', unavailable())
  log.warn('a write was refused: a reason')
  log.warn('a write was refused: a reason')
  log.error('a filesystem request failed', notFound())
  log.error('a filesystem request failed', notFound())
  log.info('mounted')
  log.info('mounted')
  t.same(lines.lines, [
    '[error] a filesystem request failed: unavailable: the store cannot be reached',
    '[warn] a filesystem request failed: unavailable: the store cannot be reached',
    '[warn] a write was refused: a reason',
    '[warn] a write was refused: a reason',
    '[error] a filesystem request failed: not-found: no such secret or directory',
    '[error] a filesystem request failed: not-found: no such secret or directory',
    '[info] mounted',
    '[info] mounted',
  ])
  await new Promise((r) => setTimeout(r, 200))
  t.equal(
    lines.lines[8],
    '[error] a filesystem request failed (and 4 more like it since): unavailable: the store cannot be reached',
    'when the window ends, how many more came',
  )
  t.equal(lines.lines.length, 9, 'nothing for a line that did not repeat')
  log.error('a filesystem request failed', unavailable())
  t.equal(lines.lines.length, 10, 'after the window, the next is written at once')
})
