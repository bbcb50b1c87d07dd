// How the store file is opened: never through a symbolic link, only a regular file, and its
// mode set to 0600 on the file opened, not on whatever the path names later.
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { IDLE_CHECKPOINT_MS, SqliteStorage } from '../../src/storage/sqlite-storage.js'
import { tempDir } from '../helpers/daemon.js'

t.test('a symlinked store, WAL or shared-memory file is refused and its target left alone', async (t) => {
  const dir = await tempDir(t)
  const target = path.join(dir, 'target')
  await fs.writeFile(target, 'keep me\n')
  await fs.chmod(target, 0o644)
  for (const name of ['secretfs.db', 'secretfs.db-wal', 'secretfs.db-shm']) {
    const data = await fs.mkdtemp(path.join(dir, 'data-'))
    await fs.symlink(target, path.join(data, name))
    t.throws(() => new SqliteStorage(path.join(data, 'secretfs.db')), {
      message: `${path.join(data, name)} is a symbolic link; the store's files must be regular files of yours. Remove it.`,
    })
    t.equal((await fs.stat(target)).mode & 0o777, 0o644, `${name}: the target keeps its mode`)
    t.equal(await fs.readFile(target, 'utf8'), 'keep me\n', `${name}: the target keeps its content`)
  }
})

t.test('a FIFO or a directory in place of the store is refused, without hanging', async (t) => {
  const dir = await tempDir(t)
  const fifo = path.join(dir, 'fifo')
  await fs.mkdir(fifo, { mode: 0o700 })
  await promisify(execFile)('mkfifo', [path.join(fifo, 'secretfs.db')])
  t.throws(() => new SqliteStorage(path.join(fifo, 'secretfs.db')), { message: /secretfs\.db is not a regular file/ })
  const sub = path.join(dir, 'sub')
  await fs.mkdir(path.join(sub, 'secretfs.db'), { recursive: true })
  t.throws(() => new SqliteStorage(path.join(sub, 'secretfs.db')), { message: /secretfs\.db is not a regular file/ })
})

t.test('an existing store file left readable by others is made 0600', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'secretfs.db')
  const first = new SqliteStorage(file)
  await first.put('k', Buffer.from('v'))
  await first.close()
  await fs.chmod(file, 0o644)
  const again = new SqliteStorage(file)
  t.teardown(() => again.close())
  t.equal((await fs.stat(file)).mode & 0o777, 0o600)
  t.same(await again.get('k'), Buffer.from('v'))
})

t.test('once writes stop, the WAL is emptied: a deleted value is in neither file', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'secretfs.db')
  const s = new SqliteStorage(file)
  t.teardown(() => s.close())
  const value = Buffer.from('a value no file may keep once it is deleted')
  await s.put('kept', Buffer.from('kept'))
  await s.put('gone', value)
  await s.delete('gone')
  const raw = async () => Buffer.concat([await fs.readFile(file), await fs.readFile(`${file}-wal`)])
  t.ok((await raw()).includes(value), 'while writes go on, the WAL holds older copies')
  t.ok((await fs.stat(`${file}-wal`)).size > 0)
  await new Promise((r) => setTimeout(r, IDLE_CHECKPOINT_MS + 500))
  t.equal((await fs.stat(`${file}-wal`)).size, 0, 'a moment after the last write, the WAL is empty')
  t.notOk((await raw()).includes(value), 'and the deleted value is nowhere in the files')
  t.same(Buffer.from((await s.get('kept'))!).toString(), 'kept', 'what is stored reads on')
  await s.put('after', Buffer.from('after'))
  t.ok((await fs.stat(`${file}-wal`)).size > 0, 'and the next write goes to the WAL again')
})

t.test('after a burst, the emptied WAL is given back in zeros; the store reads whole, after a crash too', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'secretfs.db')
  const s = new SqliteStorage(file)
  t.teardown(() => s.close())
  const gone = Buffer.from('a deleted value the zeros must not bring back')
  await s.put('gone', gone)
  for (let i = 0; i < 100; i++) await s.put(`k${i}`, Buffer.from(`value ${i}`))
  await s.delete('gone')
  await new Promise((r) => setTimeout(r, IDLE_CHECKPOINT_MS + 500))
  const wal = await fs.readFile(`${file}-wal`)
  t.ok(wal.length > 4_000_000, 'the WAL has its working size')
  t.ok(
    wal.every((b) => b === 0),
    'and holds nothing but zeros',
  )
  t.notOk((await fs.readFile(file)).includes(gone), 'the deleted value is not in the database file')

  // What a crash would leave: the files as they are on disk, opened by a new process.
  const copy = async (name: string) => {
    const to = await fs.mkdtemp(path.join(dir, name))
    await fs.copyFile(file, path.join(to, 'secretfs.db'))
    await fs.copyFile(`${file}-wal`, path.join(to, 'secretfs.db-wal'))
    return path.join(to, 'secretfs.db')
  }
  const reads = async (at: string, count: number) => {
    const again = new SqliteStorage(at)
    try {
      const values = await Promise.all(Array.from({ length: count }, (_, i) => again.get(`k${i}`)))
      return values.every((v, i) => Buffer.from(v ?? []).toString() === `value ${i}`) && !(await again.get('gone'))
    } finally {
      await again.close()
    }
  }
  t.ok(await reads(await copy('zeroed-'), 100), 'a crash with the WAL in zeros loses nothing')
  for (let i = 100; i < 150; i++) await s.put(`k${i}`, Buffer.from(`value ${i}`))
  t.equal((await fs.stat(`${file}-wal`)).size, wal.length, 'new commits overwrite the zeros, not append')
  t.ok(await reads(await copy('written-'), 150), 'a crash after new commits over the zeros loses nothing')
})
