// A mount ended from outside the daemon (`umount -l` as root, `fusermount3 -u` as its user): the
// daemon sees its /dev/fuse session end, lets it go, says so in its log, and keeps serving the
// control API until it is stopped; it never leaves a dead mountpoint behind.
import t from 'tap'
import { isMounted } from '../../src/daemon/mountpoint.js'
import { runCli } from '../helpers/cli-run.js'
import { sh, startDaemon, testBinding } from '../helpers/daemon.js'

const until = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 100 && !(await check()); i++) await new Promise((r) => setTimeout(r, 50))
  return check()
}

for (const command of ['umount -l', 'fusermount3 -u']) {
  t.test(`${command} of the mount`, async (t) => {
    if (testBinding() !== 'lowlevel') return t.plan(0, 'the low-level binding only')
    const d = await startDaemon(t)
    t.equal((await sh(`echo hi > '${d.mountpoint}/secret/x'`)).code, 0)
    const r = await sh(`${command} '${d.mountpoint}'`)
    t.equal(r.code, 0, r.stderr)
    t.ok(await until(async () => !(await isMounted(d.mountpoint))), 'the mount is gone')
    t.ok(await until(async () => /unmounted from outside the daemon/.test(d.stderr())), 'the daemon says so')
    const read = await runCli(['read', 'secret/x'], { env: { SECRETFS_ADDR: d.socketPath } })
    t.equal(read.code, 0, 'the control API still serves')
    t.same(await d.stop(), { code: 0, signal: null }, 'and SIGTERM stops it cleanly')
  })
}
