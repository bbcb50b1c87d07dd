import t from 'tap'
import { Turns } from '../src/turns.js'

const tick = () => new Promise((r) => setTimeout(r, 5))

t.test('callers of one key run one at a time, in order, a failure ending only its own turn', async (t) => {
  const turns = new Turns<string>()
  const log: string[] = []
  const step =
    (name: string, fail = false) =>
    async () => {
      log.push(`${name} in`)
      await tick()
      log.push(`${name} out`)
      if (fail) throw new Error(`${name} failed`)
      return name
    }
  const results = await Promise.allSettled([
    turns.take('k', step('a')),
    turns.take('k', step('b', true)),
    turns.take('k', step('c')),
    turns.take('other', step('x')),
  ])
  t.same(
    results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
    ['a', 'b failed', 'c', 'x'],
  )
  t.same(
    log.filter((l) => !l.startsWith('x')),
    ['a in', 'a out', 'b in', 'b out', 'c in', 'c out'],
  )
  t.equal(log.indexOf('x in'), 1, 'another key does not wait')
})
