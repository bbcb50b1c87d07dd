// Passphrases typed at a terminal: a real pseudo-terminal, each line typed once its prompt is up.
import t from 'tap'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Core } from '../../src/core/core.js'
import { SqliteStorage } from '../../src/storage/sqlite-storage.js'
import { startDaemon, tempDir } from '../helpers/daemon.js'
import { runCli } from '../helpers/cli-run.js'
import { atTerminal } from '../helpers/terminal.js'

/** Whether `passphrase` unseals the store in `data`. */
async function unseals(data: string, passphrase: string): Promise<boolean> {
  const core = new Core({ storage: new SqliteStorage(path.join(data, 'secretfs.db')) })
  try {
    await core.unseal({ kind: 'passphrase', passphrase: Buffer.from(passphrase) })
    return true
  } catch {
    return false
  } finally {
    await core.close()
  }
}

t.test('init asks twice; different answers create nothing', async (t) => {
  const dir = await tempDir(t)
  const differ = await atTerminal(
    t,
    ['init', '--data', path.join(dir, 'a')],
    [
      ['New passphrase: ', 'one passphrase\r'],
      ['Repeat the passphrase: ', 'another\r'],
    ],
  )
  t.match(differ.output, /the two passphrases differ; nothing was created/)
  t.equal(differ.code, 1)
  await t.rejects(fs.stat(path.join(dir, 'a', 'secretfs.db')), { code: 'ENOENT' }, 'no store')
  const same = await atTerminal(
    t,
    ['init', '--data', path.join(dir, 'b')],
    [
      ['New passphrase: ', 'correct horse\r'],
      ['Repeat the passphrase: ', 'correct horse\r'],
    ],
  )
  t.match(same.output, /Success! Created a store/)
  t.notMatch(same.output, /correct horse/, 'the passphrase is not echoed')
  t.ok(await unseals(path.join(dir, 'b'), 'correct horse'))
})

t.test('backspace removes a whole character, Ctrl-U the whole line', async (t) => {
  const data = path.join(await tempDir(t), 'data')
  // Backspace (DEL, and ^H) after a two-byte and a four-byte character; ^U drops what came before.
  const r = await atTerminal(
    t,
    ['init', '--data', data],
    [
      ['New passphrase: ', 'wrong start\x15correct horseé\x7f😀\x08\r'],
      ['Repeat the passphrase: ', 'correct horsX\x7fe\r'],
    ],
  )
  t.match(r.output, /Success! Created a store/, r.output)
  t.ok(await unseals(data, 'correct horse'), 'the store takes the passphrase as corrected')
})

t.test('Ctrl-C cancels, and nothing is created', async (t) => {
  const data = path.join(await tempDir(t), 'data')
  const r = await atTerminal(t, ['init', '--data', data], [['New passphrase: ', 'half typed\x03']])
  t.equal(r.code, 2)
  t.match(r.output, /Error: cancelled/)
  await t.rejects(fs.stat(path.join(data, 'secretfs.db')), { code: 'ENOENT' })
})

t.test('unseal asks for the passphrase', async (t) => {
  const dir = await tempDir(t)
  const data = path.join(dir, 'data')
  await fs.writeFile(path.join(dir, 'pass'), 'correct horse\n', { mode: 0o600 })
  t.equal((await runCli(['init', '--data', data, '--passphrase-file', path.join(dir, 'pass')])).code, 0)
  const d = await startDaemon(t, { args: ['--data', data, '--sealed'], mountpoint: false })
  const env = { SECRETFS_ADDR: d.socketPath }
  const wrong = await atTerminal(t, ['unseal'], [['Passphrase: ', 'wrong horse\r']], env)
  t.match(wrong.output, /wrong passphrase/)
  const right = await atTerminal(t, ['unseal'], [['Passphrase: ', 'correct horse\r']], env)
  t.match(right.output, /Sealed +false/)
})

t.test('a server creating a new store asks twice, as init does', async (t) => {
  const dir = await tempDir(t)
  const data = path.join(dir, 'data')
  const env = { SECRETFS_ADDR: path.join(dir, 'run', 'secretfs.sock') }
  const differ = await atTerminal(
    t,
    ['server', '--data', data],
    [
      ['New passphrase: ', 'one passphrase\r'],
      ['Repeat the passphrase: ', 'another\r'],
    ],
    env,
  )
  t.match(differ.output, /the two passphrases differ; nothing was created/)
  t.equal(differ.code, 1)
  await t.rejects(fs.stat(path.join(data, 'secretfs.db')), { code: 'ENOENT' }, 'no store')

  // Ctrl-C once it runs: the daemon stops as on SIGINT.
  const same = await atTerminal(
    t,
    ['server', '--data', data],
    [
      ['New passphrase: ', 'correct horse\r'],
      ['Repeat the passphrase: ', 'correct horse\r'],
      ['stop it with', '\x03'],
    ],
    env,
  )
  t.equal(same.code, 0, same.output)
  t.match(same.output, /initialised a new store/)
  t.ok(await unseals(data, 'correct horse'))

  // An existing store is only unsealed: asked once.
  const again = await atTerminal(
    t,
    ['server', '--data', data],
    [
      ['Passphrase: ', 'correct horse\r'],
      ['stop it with', '\x03'],
    ],
    env,
  )
  t.equal(again.code, 0, again.output)
  t.notMatch(again.output, /Repeat/)
})
