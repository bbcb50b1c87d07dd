// The mountpoint named through a symbolic link: the dead mount a crash leaves there is found
// under its real path and cleared at the next start.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { isMounted } from '../../src/daemon/mountpoint.js'
import { sh, startDaemon, tempDir } from '../helpers/daemon.js'

t.test('kill -9 of a daemon mounted through a symlink; the restart clears the dead mount', async (t) => {
  const dir = await tempDir(t)
  const real = path.join(dir, 'real')
  await fs.mkdir(real, { mode: 0o700 })
  // A chain: a link to a link, the second one relative.
  await fs.symlink('real', path.join(dir, 'hop'))
  const link = path.join(dir, 'secrets')
  await fs.symlink(path.join(dir, 'hop'), link)

  const crashed = await startDaemon(t, { mountpoint: link })
  t.ok(await isMounted(link), 'mounted, as seen through the link')
  t.same(await crashed.stop('SIGKILL'), { code: null, signal: 'SIGKILL' })
  await t.rejects(fs.stat(real), { code: 'ENOTCONN' }, 'the mount is dead')

  const next = await startDaemon(t, { mountpoint: link })
  t.match(next.stderr(), /cleared a dead mount/)
  t.equal((await sh('ls', { cwd: link })).stdout, 'secret\nsys\n')
  t.same(await next.stop(), { code: 0, signal: null })
  t.notOk(await isMounted(real))
  t.notOk(await isMounted(link))
})
