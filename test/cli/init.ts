// `secretfs init`: creates a store directly in the data directory, never over an existing one.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { Core } from '../../src/core/core.js'
import { SqliteStorage } from '../../src/storage/sqlite-storage.js'
import { runCli } from '../helpers/cli-run.js'

t.test('with a key file it creates (0600), a store that key unseals', async (t) => {
  const dir = t.testdir({})
  const data = path.join(dir, 'data')
  const key = path.join(dir, 'key')
  const r = await runCli(['init', '--data', data, '--key-file', key])
  t.same(
    [r.code, r.stdout, r.stderr],
    [
      0,
      `Success! Created a store in ${data}.\n` +
        `Start the daemon on it with: secretfs server --data ${data} --mountpoint DIR --key-file ${key}\n`,
      '',
    ],
  )
  t.equal((await fs.stat(key)).mode & 0o777, 0o600)
  t.equal((await fs.readFile(key)).length, 32)
  t.equal((await fs.stat(data)).mode & 0o777, 0o700)
  const store = path.join(data, 'secretfs.db')
  const before = await fs.readFile(store)

  const again = await runCli(['init', '--data', data, '--key-file', key])
  t.equal(again.code, 1)
  t.match(again.stderr, /a store already exists at .*secretfs\.db; it is never overwritten/)
  t.same(await fs.readFile(store), before, 'the store is untouched')

  const core = new Core({ storage: new SqliteStorage(store) })
  t.teardown(() => core.close())
  await core.unseal({ kind: 'key-file', key: await fs.readFile(key) })
  t.same(await core.list(''), ['secret/', 'sys/'])
})

t.test('with a passphrase file; an existing key file of the wrong size is refused', async (t) => {
  const dir = t.testdir({ pass: 'a long passphrase\n', short: 'abc' })
  // Files of ours alone: others' permissions are refused before the size is looked at.
  for (const f of ['pass', 'short']) await fs.chmod(path.join(dir, f), 0o600)
  const data = path.join(dir, 'data')
  const short = await runCli(['init', '--data', data, '--key-file', path.join(dir, 'short')])
  t.equal(short.code, 1)
  t.match(short.stderr, /short.* 32 bytes/)
  await t.rejects(fs.stat(path.join(data, 'secretfs.db')), { code: 'ENOENT' }, 'nothing created')
  const r = await runCli(['init', '--data', data, '--passphrase-file', path.join(dir, 'pass')])
  t.same(
    [r.code, r.stdout, r.stderr],
    [
      0,
      `Success! Created a store in ${data}.\n` +
        `Start the daemon on it with: secretfs server --data ${data} --mountpoint DIR --passphrase-file FILE (or type the passphrase when asked)\n`,
      '',
    ],
  )
  const core = new Core({ storage: new SqliteStorage(path.join(data, 'secretfs.db')) })
  t.teardown(() => core.close())
  await core.unseal({ kind: 'passphrase', passphrase: Buffer.from('a long passphrase') })
  t.equal(core.sealed, false)
})

t.test('no terminal and no file: a usage error, nothing created', async (t) => {
  const dir = t.testdir({})
  const r = await runCli(['init', '--data', path.join(dir, 'data')])
  t.equal(r.code, 2)
  t.match(r.stderr, /no terminal to ask for the passphrase/)
  await t.rejects(fs.stat(path.join(dir, 'data', 'secretfs.db')), { code: 'ENOENT' })
})

t.test('the default data directory is $XDG_DATA_HOME/secretfs', async (t) => {
  const dir = t.testdir({})
  const r = await runCli(['init', '--key-file', path.join(dir, 'key')], { env: { XDG_DATA_HOME: dir } })
  t.equal(r.code, 0, r.stderr)
  t.ok((await fs.stat(path.join(dir, 'secretfs', 'secretfs.db'))).isFile())
})
