// The real CLI against a control API served in this process: fast path.
import path from 'node:path'
import t from 'tap'
import { withApi } from '../helpers/cli-run.js'

t.test('the fast path and yargs agree', async (t) => {
  const { api, cli } = await withApi(t)
  await api.core.write('secret/a', Buffer.from('{"k":"v"}'))
  for (const args of [
    ['read', 'secret/a'],
    ['read', 'secret/a', '--format=json'],
    ['read', '--field', 'k', 'secret/a'],
    ['list', 'secret/'],
    ['list', 'secret/', '--format', 'json'],
    ['read', 'secret/missing'],
    ['write', 'secret/b', 'x=1'],
    ['delete', 'secret/b'],
  ]) {
    if (args[0] === 'delete') await api.core.write('secret/b', Buffer.from('x'))
    const fast = await cli(args)
    if (args[0] === 'delete') await api.core.write('secret/b', Buffer.from('x'))
    const slow = await cli(args, undefined, { SECRETFS_CLI_NO_FAST_PATH: '1' })
    t.same(slow, fast, args.join(' '))
  }
})
