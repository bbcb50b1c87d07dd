// Key and passphrase files are refused when others could read them, as ssh refuses such keys.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { Core } from '../../src/core/core.js'
import { SqliteStorage } from '../../src/storage/sqlite-storage.js'
import { coreWith, startTestApi } from '../helpers/api-fixture.js'
import { runCli } from '../helpers/cli-run.js'
import { cliCommand, sh, startDaemon, tempDir } from '../helpers/daemon.js'

// A user with no /etc/passwd entry, used by this file only.
const STRANGER = 64121

const KEY = Buffer.alloc(32, 7)

/** A file with `content`, then given `mode` (and `owner`), whatever the umask. */
async function file(dir: string, name: string, content: string | Buffer, mode: number, owner?: number) {
  const f = path.join(dir, name)
  await fs.writeFile(f, content)
  await fs.chmod(f, mode)
  if (owner !== undefined) await fs.chown(f, owner, owner)
  return f
}

t.test('init, unseal and server refuse a key or passphrase file others can read', async (t) => {
  const dir = await tempDir(t)
  const api = await startTestApi(t, { core: await coreWith({ kind: 'key-file', key: KEY }) })
  api.core.seal()
  const cases: [string, string, RegExp][] = [
    [
      '--key-file',
      await file(dir, 'key-644', KEY, 0o644),
      /the key file .*key-644 is open to other users \(mode 644\)/,
    ],
    [
      '--key-file',
      await file(dir, 'key-640', KEY, 0o640),
      /the key file .*key-640 is open to other users \(mode 640\)/,
    ],
    [
      '--passphrase-file',
      await file(dir, 'pass-604', 'correct horse\n', 0o604),
      /the passphrase file .*pass-604 is open to other users \(mode 604\)/,
    ],
    [
      '--key-file',
      await file(dir, 'key-stranger', KEY, 0o600, STRANGER),
      /the key file .*key-stranger belongs to another user \(uid 64121\)/,
    ],
  ]
  for (const [flag, f, message] of cases) {
    const fix = new RegExp(
      f.endsWith('stranger') ? 'make a copy of your own' : `chmod 600 ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
    )
    const data = path.join(dir, `data-${path.basename(f)}`)
    const init = await runCli(['init', '--data', data, flag, f])
    t.equal(init.code, 1, `init ${flag} ${path.basename(f)}`)
    t.match(init.stderr, message)
    t.match(init.stderr, fix)
    await t.rejects(fs.stat(data), { code: 'ENOENT' }, 'init created nothing')

    const unseal = await runCli(['unseal', flag, f], { env: { SECRETFS_ADDR: api.socketPath } })
    t.equal(unseal.code, 1, `unseal ${flag} ${path.basename(f)}`)
    t.match(unseal.stderr, message)
    t.equal(api.core.sealed, true, 'still sealed')

    const d = await startDaemon(t, {
      args: ['--data', data, flag, f],
      mountpoint: false,
      wait: 'exit',
      timeoutMs: 30_000,
    })
    t.equal((await d.exited).code, 1, `server ${flag} ${path.basename(f)}`)
    t.match(d.stderr(), message)
    t.match(d.stderr(), fix)
  }
  t.equal((await fs.stat(path.join(dir, 'key-644'))).mode & 0o777, 0o644, 'the file is left as it is')

  const ok = await file(dir, 'key-600', KEY, 0o600)
  t.equal((await runCli(['unseal', '--key-file', ok], { env: { SECRETFS_ADDR: api.socketPath } })).code, 0)
  t.equal(api.core.sealed, false, 'a 0600 key file of ours unseals')
})

t.test('a passphrase file may be a pipe; one over 64 KiB is refused', async (t) => {
  const dir = await tempDir(t)
  const cli = cliCommand()
  const line = [cli.file, ...cli.args].map((a) => `'${a}'`).join(' ')
  const data = path.join(dir, 'data')
  const piped = await sh(`bash -c "${line} init --data ${data} --passphrase-file <(printf 'correct horse\\n')"`, {
    env: cli.env,
  })
  t.equal(piped.code, 0, piped.stderr)
  const core = new Core({ storage: new SqliteStorage(path.join(data, 'secretfs.db')) })
  t.teardown(() => core.close())
  await core.unseal({ kind: 'passphrase', passphrase: Buffer.from('correct horse') })
  t.equal(core.sealed, false, 'the pipe gave the passphrase, less its line break')

  const big = await file(dir, 'big', 'x'.repeat(64 * 1024 + 1), 0o600)
  const r = await runCli(['init', '--data', path.join(dir, 'other'), '--passphrase-file', big])
  t.equal(r.code, 1)
  t.match(r.stderr, `the passphrase file ${big} is larger than 64 KiB; is it the right file?`)
})
