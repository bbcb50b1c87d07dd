// A full disk, for real: the store's data directory on a size-limited tmpfs. Writes fail with
// ENOSPC (the filesystem) and 507 (the API) and store nothing, the daemon stops cleanly, a start on
// the full disk says what is wrong, and once there is room again every acknowledged write is there.
import t from 'tap'
import fs from 'node:fs/promises'
import path from 'node:path'
import { runCli } from '../helpers/cli-run.js'
import { sh, startDaemon, tempDir } from '../helpers/daemon.js'

t.test('writes fail with ENOSPC and 507 and store nothing; the daemon stops cleanly', async (t) => {
  const dir = await tempDir(t)
  const disk = path.join(dir, 'disk')
  await fs.mkdir(disk, { mode: 0o700 })
  const mounted = await sh(`mount -t tmpfs -o size=3m,mode=0700 secretfs-test-tmpfs '${disk}'`)
  t.equal(mounted.code, 0, `tmpfs mounted ${mounted.stderr}`)
  t.teardown(() => sh(`umount '${disk}'`))
  const key = path.join(dir, 'key')
  await fs.writeFile(key, Buffer.alloc(32, 9), { mode: 0o600 })
  const args = ['--data', path.join(disk, 'data'), '--key-file', key]
  const mountpoint = path.join(dir, 'mnt')
  const big = path.join(dir, 'big')
  await fs.writeFile(big, Buffer.alloc(800_000, 'b'))

  const d = await startDaemon(t, { args, mountpoint })
  const stored: string[] = []
  let full: { stderr: string } | undefined
  for (let i = 0; i < 10 && !full; i++) {
    const r = await sh(`cp '${big}' secret/big${i}`, { cwd: mountpoint })
    if (r.code === 0) stored.push(`big${i}`)
    else full = r
  }
  t.ok(stored.length > 0, 'some secrets fit')
  t.match(full?.stderr, /failed to close .*: No space left on device/, 'cp says ENOSPC, not EIO')
  t.match(d.stderr(), /the disk holding the store is full/)
  const failed = stored.length
  t.equal((await sh(`ls secret`, { cwd: mountpoint })).stdout, stored.map((s) => s + '\n').join(''))
  const api = await runCli(['write', 'secret/api', '-'], {
    env: { SECRETFS_ADDR: d.socketPath },
    input: Buffer.alloc(800_000, 'a'),
  })
  t.same(
    [api.code, api.stderr],
    [1, 'Error writing secret/api: the disk holding the store is full; nothing was written\n'],
  )
  t.same(await d.stop(), { code: 0, signal: null }, 'a clean exit, though the checkpoint cannot run')
  t.match(d.stderr(), /stopped; keys zeroed/)
  t.notMatch(d.stderr(), /SQLITE_FULL\n|shutdown failed/)

  const onFull = await startDaemon(t, { args, mountpoint, wait: 'exit' })
  t.equal((await onFull.exited).code, 1)
  t.match(onFull.stderr(), /the disk holding it is full; free some space, then start again/)
  t.notMatch(onFull.stderr(), /at new SqliteStorage/, 'no stack trace')

  t.equal((await sh(`mount -o remount,size=16m '${disk}'`)).code, 0)
  const again = await startDaemon(t, { args, mountpoint })
  const listed = await sh('ls secret', { cwd: mountpoint })
  t.equal(listed.stdout, stored.map((s) => s + '\n').join(''), 'every acknowledged write, nothing else')
  for (const name of stored)
    t.equal((await sh(`cmp '${big}' secret/${name}`, { cwd: mountpoint })).code, 0, `${name} intact`)
  t.equal(stored.length, failed)
  await again.stop()
})
