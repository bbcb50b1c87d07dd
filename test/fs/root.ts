// Issue 3, item 2: the root directory is the mount table.
import t from 'tap'
import fs from 'node:fs/promises'
import path from 'node:path'
import { quiet, sh, startDaemon } from '../helpers/daemon.js'

const daemon = await startDaemon(t)
const mnt = daemon.mountpoint
const root = (cmd: string) => sh(cmd, { cwd: mnt })
const table = async () => (await root('cat sys/mounts')).stdout

t.test('the root lists every mount as a directory, sys included', async (t) => {
  t.equal((await root('ls -A')).stdout, 'secret\nsys\n')
  t.match((await root('ls -ld secret sys')).stdout, /^drwx------ .* secret\ndr-x------ .* sys\n$/)
})

t.test('mkdir mounts: a backend type by its name, any other name as generic', async (t) => {
  t.equal((await root('mkdir generic && mkdir team')).code, 0)
  t.match(await table(), /^generic\/ +generic$/m)
  t.match(await table(), /^team\/ +generic$/m)
  t.equal((await root('echo v > team/k && cat team/k && ls')).stdout, 'v\ngeneric\nsecret\nsys\nteam\n')
  t.match((await root('mkdir team')).stderr, /File exists/)
  t.match((await root('mkdir secret')).stderr, /File exists/)
  t.match((await root('mkdir sys')).stderr, /File exists/)
  t.match((await root('mkdir .reserved')).stderr, /Operation not permitted/)
})

t.test('rmdir unmounts, even when not empty; the data is gone', async (t) => {
  t.same(await root('mkdir gone && mkdir -p gone/a/b && echo x > gone/a/b/c'), quiet)
  t.equal((await root('cat gone/a/b/c')).stdout, 'x\n', 'the mount holds data')
  t.same(await root('rmdir gone'), quiet)
  t.notMatch(await table(), /^gone\//m)
  t.same(await root('mkdir gone'), quiet)
  t.match(await table(), /^gone\/ +generic$/m, 'mounted again')
  t.same(await root('ls -A gone'), quiet, 'a new mount with the same name starts empty')
  t.match((await root('rmdir sys')).stderr, /Operation not permitted/)
  t.match((await root('rmdir nothing')).stderr, /No such file or directory/)
})

t.test('mv remounts with the data; not onto an existing mount; sys stays', async (t) => {
  t.same(await root('mkdir from && echo kept > from/s'), quiet)
  t.equal((await root('mv from to && cat to/s')).stdout, 'kept\n')
  t.match(await table(), /^to\/ +generic/m)
  t.notMatch(await table(), /^from\//m)
  const onto = await root('mv -T to secret')
  t.equal(onto.code, 1)
  t.match(onto.stderr, /File exists|Directory not empty/)
  t.equal((await root('cat to/s')).stdout, 'kept\n', 'refused: nothing moved')
  const sys = await root('mv -T sys system')
  t.equal(sys.code, 1)
  t.match(sys.stderr, /cannot move 'sys' to 'system': Operation not permitted/)
  t.match(await table(), /^sys\/ +system/m)
})

t.test('a regular file at the root is refused', async (t) => {
  t.match((await root('touch file')).stderr, /Operation not permitted/)
  t.match((await root('echo x > file')).stderr, /Operation not permitted/)
  t.match((await root('echo x > secret/f && mv secret/f f')).stderr, /Operation not permitted|cross-device/)
  t.equal((await root('cat secret/f')).stdout, 'x\n')
  await t.rejects(fs.stat(path.join(mnt, 'file')), { code: 'ENOENT' })
})

t.test('hostile names: sys/ has no inherited files; mkdir __proto__ mounts a generic backend', async (t) => {
  for (const name of ['constructor', 'toString', '__proto__', 'valueOf']) {
    const r = await root(`cat sys/${name}`)
    t.same([r.code, r.stdout], [1, ''], `cat sys/${name}`)
    t.match(r.stderr, /No such file or directory/)
  }
  t.equal((await root('mkdir __proto__ constructor && echo p > __proto__/k && cat __proto__/k')).stdout, 'p\n')
  t.match(await table(), /^__proto__\/ +generic$/m)
  t.match(await table(), /^constructor\/ +generic$/m)
  t.match((await root('ls')).stdout, /^__proto__$/m)
})
