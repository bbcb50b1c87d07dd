// Issue 3, item 3: the common tools, run for real on a real mount served by a daemon process, on
// the binding $SECRETFS_FUSE names (shell-tools-fuse-native.ts runs them on the other).
import t from 'tap'
import fs from 'node:fs/promises'
import path from 'node:path'
import { quiet, sh, startDaemon, tempDir, testBinding } from '../helpers/daemon.js'
import { fdDriver } from '../helpers/fd-driver.js'

const daemon = await startDaemon(t)
t.match(daemon.stderr(), `filesystem mounted (${testBinding()})`, `on the ${testBinding()} binding`)
const mnt = daemon.mountpoint
const secret = path.join(mnt, 'secret')
/** Runs in ROOT/secret/<dir>, a directory of the subtest's own. */
const inDir = async (dir: string) => {
  await fs.mkdir(path.join(secret, dir))
  return (cmd: string) => sh(cmd, { cwd: path.join(secret, dir) })
}
const read = (...p: string[]) => fs.readFile(path.join(secret, ...p))

t.test('cat, echo >, echo >>, printf with binary bytes, head -c, tee', async (t) => {
  const run = await inDir('basic')
  t.equal((await run('echo x > f && cat f')).stdout, 'x\n')
  t.equal((await run('echo y >> f && cat f')).stdout, 'x\ny\n')
  t.equal((await run('echo z > f && cat f')).stdout, 'z\n', '> replaces the content')
  t.equal((await run(String.raw`printf '\000\001\377\n\200' > bin`)).code, 0)
  t.same([...(await read('basic', 'bin'))], [0, 1, 255, 10, 128], 'binary bytes kept exactly')
  t.equal((await run('head -c 2 f')).stdout, 'z\n')
  const tee = await run('echo teed | tee t1 t2 >/dev/null && cat t1 t2')
  t.equal(tee.stdout, 'teed\nteed\n')
  t.equal((await run(': > f && wc -c < f')).stdout.trim(), '0', 'an open with O_TRUNC alone empties the file')
})

t.test('a name that is not UTF-8 is refused (EILSEQ), never taken for another', async (t) => {
  const run = await inDir('names')
  /** `cmd` with $n the name whose bytes `octal` gives (in escapes, as printf takes them). */
  const named = (octal: string, cmd: string) => run(`n="$(printf '${octal}')"; ${cmd}`)
  const refused = /Invalid or incomplete multibyte or wide character/
  t.match((await named('\\377', 'printf one > "$n"')).stderr, refused, 'a byte that is no UTF-8')
  t.match((await named('\\376', 'printf two > "$n"')).stderr, refused, 'another, which must not be the same name')
  t.match((await named('a\\303', 'printf three > "$n"')).stderr, refused, 'a sequence cut short')
  t.match((await named('\\300\\257', 'printf four > "$n"')).stderr, refused, "an overlong '/'")
  t.match((await named('\\355\\240\\200', 'printf five > "$n"')).stderr, refused, 'a surrogate')
  t.match((await named('\\364\\220\\200\\200', 'printf six > "$n"')).stderr, refused, 'past U+10FFFF')
  t.match((await named('\\377', 'mkdir "$n"')).stderr, refused, 'mkdir')
  t.equal((await run('printf kept > kept')).code, 0)
  t.match((await named('\\377', 'mv kept "$n"')).stderr, refused, 'mv to such a name')
  t.equal((await run('ls -A')).stdout, 'kept\n', 'nothing was made, nothing lost')
  t.not((await named('\\377', 'cat "$n"')).code, 0, 'and none can be read')
  t.equal((await run('printf été > ünïcødé && cat ünïcødé')).stdout, 'été', 'UTF-8 names are names')
  t.equal((await named('\\360\\237\\224\\221', 'printf key > "$n" && cat "$n"')).stdout, 'key', 'four bytes too')
})

t.test('cp in and out, cp -r of a tree, cp -p', async (t) => {
  const outside = await tempDir(t)
  await fs.mkdir(path.join(outside, 'tree/a/b'), { recursive: true })
  await fs.writeFile(path.join(outside, 'tree/top'), 'top')
  await fs.writeFile(path.join(outside, 'tree/a/b/deep'), Buffer.alloc(300_000, 7))
  const run = await inDir('cp')
  t.equal((await run(`cp ${outside}/tree/top in && cp in ${outside}/out`)).code, 0)
  t.equal(await fs.readFile(path.join(outside, 'out'), 'utf8'), 'top')
  const r = await run(
    `cp -r ${outside}/tree copied && diff -r ${outside}/tree copied && cp -r copied ${outside}/back && diff -r ${outside}/tree ${outside}/back`,
  )
  t.equal(r.code, 0, r.stderr)

  // What -p and -a would keep and the mount does not take: another mode, and times of 2001.
  t.same(await sh(`chmod -R go+rX ${outside}/tree && find ${outside}/tree -exec touch -d 2001-01-01 {} +`), quiet)
  const start = Math.floor(Date.now() / 1000)
  t.same(await run(`cp -p ${outside}/tree/top kept && cp -a ${outside}/tree archived`), quiet, 'cp -p and cp -a')
  t.equal(await fs.readFile(path.join(secret, 'cp/kept'), 'utf8'), 'top', 'cp -p: the content')
  t.same(await run(`diff -r ${outside}/tree archived`), quiet, 'cp -a: the same tree, the same content')
  t.equal(
    (await run('find kept archived -printf "%m %y %p\\n" | sort -k3')).stdout,
    [
      '700 d archived',
      '700 d archived/a',
      '700 d archived/a/b',
      '600 f archived/a/b/deep',
      '600 f archived/top',
      '600 f kept',
      '',
    ].join('\n'),
    'files are 0600 and directories 0700, whatever the source had',
  )
  // A secret's times are its own: the time it was written, not the source's.
  for (const p of ['kept', 'archived/top', 'archived/a/b/deep'])
    t.ok(
      Math.floor((await fs.stat(path.join(secret, 'cp', p))).mtimeMs / 1000) >= start,
      `${p}: written now, not in 2001`,
    )
})

t.test('mv inside a mount replaces the target atomically; mv between mounts copies', async (t) => {
  const run = await inDir('mv')
  t.same(await run('echo old > target && echo new > source'), quiet)
  t.equal((await run('mv source target && cat target && ls')).stdout, 'new\ntarget\n')
  t.same(await run('mkdir -p d/e && echo inner > d/e/f && mv d moved'), quiet)
  t.equal((await read('mv', 'moved', 'e', 'f')).toString(), 'inner\n', 'a directory moves with its contents')
  t.equal((await sh(`mkdir ${mnt}/othermount`)).code, 0)
  const across = await run(`mv target ${mnt}/othermount/target && mv moved ${mnt}/othermount/moved`)
  t.equal(across.code, 0, `mv between mounts falls back to copying: ${across.stderr}`)
  t.equal(await fs.readFile(path.join(mnt, 'othermount/target'), 'utf8'), 'new\n')
  t.equal(await fs.readFile(path.join(mnt, 'othermount/moved/e/f'), 'utf8'), 'inner\n')
  t.equal((await run('ls')).stdout, '', 'the sources are gone')
  // rename(2) itself answers EXDEV between mounts (mv hides it).
  t.same(await run('echo x > x'), quiet)
  const raw = await run(`node -e "require('fs').renameSync('x', '${mnt}/othermount/x')"`)
  t.match(raw.stderr, /EXDEV/)
})

t.test('rm, rm -r, mkdir -p, rmdir', async (t) => {
  const run = await inDir('rm')
  t.equal(
    (await run('mkdir -p a/b/c && echo 1 > a/b/c/f && echo 2 > a/g && find . | sort')).stdout,
    '.\n./a\n./a/b\n./a/b/c\n./a/b/c/f\n./a/g\n',
  )
  const notEmpty = await run('rmdir a/b')
  t.equal(notEmpty.code, 1)
  t.match(notEmpty.stderr, /Directory not empty/)
  t.equal((await run('rm a/g && rm -r a/b && rmdir a && ls -A')).stdout, '')
  t.match((await run('rm nothing')).stderr, /No such file or directory/)
})

t.test('ls -la, find, touch, stat: modes 0600 and 0700, owned by the daemon user', async (t) => {
  const run = await inDir('ls')
  t.same(await run('mkdir d && echo hello > d/f && touch empty'), quiet)
  const ls = (await run('ls -la')).stdout
  t.match(ls, /^drwx------ +\d+ root root +\d+ .* d$/m)
  t.match(ls, /^-rw------- +1 root root +0 .* empty$/m)
  t.equal((await run('stat -c "%a %U %G %s %F" d/f')).stdout, '600 root root 6 regular file\n')
  t.equal((await run('stat -c "%a %F" d')).stdout, '700 directory\n')
  t.equal((await run('find . -type f | sort')).stdout, './d/f\n./empty\n')
  t.equal(
    (await run('touch d/f && touch -d 2001-01-01 d/f && cat d/f')).stdout,
    'hello\n',
    'touch on an existing file is accepted, content kept',
  )
})

t.test('sed -i, truncate -s, dd with seek and skip', async (t) => {
  const run = await inDir('edit')
  t.same(await run('printf "alpha\\nbeta\\n" > f'), quiet)
  t.equal((await run('sed -i s/beta/gamma/ f && cat f')).stdout, 'alpha\ngamma\n')
  t.equal((await run('truncate -s 3 f && cat f')).stdout, 'alp')
  t.equal((await run('truncate -s 5 f && od -An -c f')).stdout.replace(/\s+/g, ' ').trim(), 'a l p \\0 \\0')
  t.same(await run('printf 0123456789 > d'), quiet)
  t.equal((await run('printf XY | dd of=d bs=1 seek=4 conv=notrunc 2>/dev/null && cat d')).stdout, '0123XY6789')
  t.equal((await run('dd if=d bs=1 skip=6 count=3 2>/dev/null')).stdout, '678')
  t.equal(
    (await run('printf AB | dd of=d bs=1 seek=12 2>/dev/null && od -An -c d')).stdout.replace(/\s+/g, ' ').trim(),
    '0 1 2 3 X Y 6 7 8 9 \\0 \\0 A B',
    'a write past the end leaves zeros in the gap',
  )
})

t.test("a file created and removed while open leaves nothing (as vim's swap probe does)", async (t) => {
  const run = await inDir('probe')
  const d = fdDriver(t, path.join(secret, 'probe'))
  const fd = await d.open('.probe.swpx', 'wx')
  t.same(await run('rm .probe.swpx'), quiet, 'removed while open, before anything was stored')
  t.same(await d.close(fd), { closed: true })
  t.equal((await run('ls -A')).stdout, '', 'nothing left, nothing stored at the last close')
})

t.test('vim -es edits a secret', async (t) => {
  const run = await inDir('vim')
  t.same(await run('printf "user=me\\npassword=old\\n" > cfg'), quiet)
  const r = await run(`vim -es -u NONE -i NONE -c '%s/old/new/' -c 'wq' cfg`)
  t.equal(r.code, 0, r.stderr)
  t.equal((await read('vim', 'cfg')).toString(), 'user=me\npassword=new\n')
  t.equal((await run('ls -A')).stdout, 'cfg\n', 'no swap or backup file left behind')
})

t.test('symlinks, hard links and device nodes are refused (EPERM); chmod, chown accepted', async (t) => {
  const run = await inDir('links')
  t.same(await run('echo x > f'), quiet)
  t.match((await run('ln -s f s')).stderr, /Operation not permitted/)
  t.match((await run('ln f h')).stderr, /Operation not permitted/)
  t.match((await run('mkfifo p')).stderr, /Operation not permitted/)
  t.match((await run('mknod n c 1 3')).stderr, /Operation not permitted/)
  t.equal((await run('chmod 644 f && chown root:root f && stat -c %a f')).stdout, '600\n', 'chmod is a no-op')
  // rsync -a sets modes and times (accepted, changing nothing) and renames its temp file into place.
  const outside = await tempDir(t)
  await fs.mkdir(path.join(outside, 'sub'))
  await fs.writeFile(path.join(outside, 'r'), 'rsynced')
  await fs.writeFile(path.join(outside, 'sub/s'), 'deeper')
  t.same(await run(`rsync -a ${outside}/ synced/`), quiet, 'rsync -a (scripts/setup.sh installs it)')
  t.equal((await run('cat synced/r synced/sub/s && ls -A synced')).stdout, 'rsynceddeeper' + 'r\nsub\n')
})

t.test('descriptors of one file share its content; close publishes it', async (t) => {
  const run = await inDir('atomic')
  // One process writes through one descriptor and reads through a second, as on a local disk.
  const r = await run(`printf old > f && node -e "
const fs = require('fs')
const fd = fs.openSync('f', 'r+')
fs.writeSync(fd, 'NEW-CONTENT')
console.log('during:', fs.readFileSync('f', 'utf8'))
fs.closeSync(fd)
console.log('after:', fs.readFileSync('f', 'utf8'))"`)
  t.equal(r.stdout, 'during: NEW-CONTENT\nafter: NEW-CONTENT\n', r.stderr)
  // A shell redirection: the file is empty for readers from the open, as on a local disk. The
  // writer says through one fifo that it has opened the file, and waits on another to write.
  const fifos = await tempDir(t)
  t.same(await sh(`mkfifo ${fifos}/opened ${fifos}/go`), quiet)
  const s = await run(`printf old > g
(echo > ${fifos}/opened; read _ < ${fifos}/go; echo new) > g &
read _ < ${fifos}/opened; echo "while open: [$(cat g)]"
echo > ${fifos}/go; wait; echo "after close: [$(cat g)]"`)
  t.equal(s.stdout, 'while open: []\nafter close: [new]\n', s.stderr)
  // Emptied and closed: visible at once, every time.
  let empty = 0
  for (let i = 0; i < 20; i++) if ((await run('echo 12 > h && : > h && wc -c < h && cat h')).stdout === '0\n') empty++
  const appended: string[] = []
  for (let i = 0; i < 10; i++) appended.push((await run('echo 12 > h && : > h && echo 3 >> h && cat h')).stdout)
  t.same(new Set(appended), new Set(['3\n']), '`: > h` then `>> h` appends to the empty file')
  t.equal(empty, 20, '`: > h` then a read sees the empty file')
})

t.test('a commit that fails is reported by close (EFBIG), and nothing is stored', async (t) => {
  const run = await inDir('big')
  const r = await run('dd if=/dev/zero of=big bs=1M count=2')
  t.equal(r.code, 1)
  t.match(r.stderr, /File too large/)
  t.equal((await run('ls -A')).stdout, '')
  t.same(await run('echo small > f'), quiet)
  const over = await run('head -c 1100000 /dev/zero > f')
  t.equal(over.code, 1)
  t.match(over.stderr, /File too large/)
  t.equal((await read('big', 'f')).toString(), 'small\n', 'the old value stays')
})

t.test('sys/ is read-only and shows the mount table and status', async (t) => {
  const mounts = await sh('cat sys/mounts', { cwd: mnt })
  t.match(mounts.stdout, /^Path +Type +Description\n(.*\n)*secret\/ +generic +generic secret storage\n/)
  const json = JSON.parse((await sh('cat sys/mounts.json', { cwd: mnt })).stdout) as Record<string, { type: string }>
  t.equal(json['sys/']?.type, 'system')
  t.match(JSON.parse((await sh('cat sys/seal-status', { cwd: mnt })).stdout), { sealed: false, initialized: true })
  t.match(JSON.parse((await sh('cat sys/health', { cwd: mnt })).stdout), { healthy: true })
  t.match((await sh('echo x > sys/mounts', { cwd: mnt })).stderr, /Permission denied/)
  t.match((await sh('echo x > sys/new', { cwd: mnt })).stderr, /Permission denied/)
  const rm = await sh('rm -f sys/mounts', { cwd: mnt })
  t.equal(rm.code, 1)
  t.match(rm.stderr, /cannot remove 'sys\/mounts': Permission denied/)
  t.match((await sh('cat sys/mounts', { cwd: mnt })).stdout, /^Path +Type/, 'sys/mounts is still there')
})

t.test('names that tools probe for get ENOENT at the root, and nothing appears there', async (t) => {
  for (const name of ['.Trash', '.Trash-0', '.hidden', 'autorun.inf', '.git', '.xdg-volume-info', '.directory'])
    t.match((await sh(`stat ${name}`, { cwd: mnt })).stderr, /No such file or directory/, name)
  const names = (await sh('ls -A', { cwd: mnt })).stdout.split('\n').filter(Boolean)
  t.notOk(
    names.some((n) => n.startsWith('.')),
    'no hidden names at the root',
  )
})

t.test('the mount is private: another uid is refused', async (t) => {
  const r = await sh(`setpriv --reuid=65534 --regid=65534 --clear-groups cat ${mnt}/sys/mounts`)
  t.equal(r.code, 1)
  t.match(r.stderr, /Permission denied/)
  const ls = await sh(`setpriv --reuid=65534 --regid=65534 --clear-groups ls ${mnt}`)
  t.match(ls.stderr, /Permission denied/)
})
