import t from 'tap'
import { Core } from '../../src/core/core.js'

t.test('dev core: the default mounts, and secrets in and out', async (t) => {
  const core = await Core.dev()
  t.teardown(() => core.close())
  t.same(
    core.mounts().map((m) => [m.path, m.type, m.description]).sort(),
    [
      ['secret/', 'generic', 'generic secret storage'],
      ['sys/', 'system', 'system endpoints used for control, policy and debugging'],
    ],
  )
  await core.write('secret/team/db/password', Buffer.from('hunter2'))
  t.equal(Buffer.from((await core.read('secret/team/db/password')).value).toString(), 'hunter2')
  t.same(await core.list('secret/'), ['team/'])
  t.same(await core.list('secret/team/db'), ['password'])
  t.same(await core.list(''), ['secret/', 'sys/'])
})
