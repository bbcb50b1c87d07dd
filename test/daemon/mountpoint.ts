// The mountpoint named through a symbolic link: the dead mount a crash leaves there is found
// under its real path and cleared at the next start.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { isMounted, prepareMountpoint } from '../../src/daemon/mountpoint.js'
import { captureLog } from '../helpers/capture-log.js'
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
  t.same(await crashed.stop('SIGKILL'), { code: null, signal: 'SIGKILL' })
  t.ok(await isMounted(link), 'the dead mount is seen through the link')
  // statfs, not stat: the kernel may still answer a stat of the root from its attribute cache.
  await t.rejects(fs.statfs(real), { code: 'ENOTCONN' }, 'the mount is dead')

  const next = await startDaemon(t, { mountpoint: link })
  t.match(next.stderr(), /cleared a dead mount/)
  t.equal((await sh('ls', { cwd: link })).stdout, 'secret\nsys\n')
  t.same(await next.stop(), { code: 0, signal: null })
  t.notOk(await isMounted(real))
  t.notOk(await isMounted(link))
})

t.test('a dead mount is recognised at once, even while the kernel still caches its attributes', async (t) => {
  const dir = await tempDir(t)
  const mountpoint = path.join(dir, 'mnt')
  const crashed = await startDaemon(t, { mountpoint })
  // A stat just before the crash: for 100 ms the kernel answers the next one from its cache.
  await fs.stat(mountpoint)
  await crashed.stop('SIGKILL')
  const log = captureLog()
  t.equal(await prepareMountpoint(mountpoint, log), mountpoint)
  t.match(log.lines, [/cleared a dead mount/])
  t.notOk(await isMounted(mountpoint))
})
