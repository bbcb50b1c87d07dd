// The real CLI against a control API served in this process: address.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { defaultSocketPath } from '../../src/api/socket-path.js'
import { socketDir, startTestApi } from '../helpers/api-fixture.js'
import { runCli } from '../helpers/cli-run.js'

t.test('a daemon at the default socket is found without SECRETFS_ADDR; --address wins', async (t) => {
  const home = await socketDir(t)
  const env = { HOME: home, XDG_RUNTIME_DIR: path.join(home, 'run'), XDG_DATA_HOME: '', SECRETFS_ADDR: '' }
  await fs.mkdir(env.XDG_RUNTIME_DIR, { mode: 0o700 })
  const api = await startTestApi(t, { socketPath: defaultSocketPath(env) })
  await api.core.write('secret/found', Buffer.from('{"v":"yes"}'))
  t.equal((await runCli(['read', 'secret/found', '--field', 'v'], { env })).stdout, 'yes')
  // Without a runtime dir (another login shell), the data-dir default is looked at too.
  const other = await startTestApi(t, { socketPath: defaultSocketPath({ HOME: home }) })
  await other.core.write('secret/found', Buffer.from('{"v":"data dir"}'))
  t.equal(
    (await runCli(['read', 'secret/found', '--field', 'v'], { env: { ...env, XDG_RUNTIME_DIR: '' } })).stdout,
    'data dir',
  )
  t.equal(
    (await runCli(['read', 'secret/found', '--field', 'v', '--address', `unix://${other.socketPath}`], { env })).stdout,
    'data dir',
  )
})
