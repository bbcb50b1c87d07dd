// The real CLI against a control API served in this process: seal unseal.
import path from 'node:path'
import t from 'tap'
import { coreWith, startTestApi } from '../helpers/api-fixture.js'
import { runCli } from '../helpers/cli-run.js'

t.test('status, seal, unseal, rotate', async (t) => {
  const dir = t.testdir({ key: Buffer.alloc(32, 3), wrong: Buffer.alloc(32, 4), pass: 'open sesame\n' })
  const api = await startTestApi(t, { core: await coreWith({ kind: 'key-file', key: Buffer.alloc(32, 3) }) })
  const cli = (args: string[]) => runCli(args, { env: { SECRETFS_ADDR: api.socketPath } })
  const status = await cli(['status'])
  t.equal(
    status.stdout,
    `Key            Value\n---            -----\nInitialized    true\nSealed         false\nKey Term       1\nAddress        ${api.socketPath}\n`,
  )
  t.equal((await cli(['seal'])).stdout, 'Success! secretfs is sealed.\n')
  t.same(JSON.parse((await cli(['status', '--format', 'json'])).stdout), {
    initialized: true,
    sealed: true,
    address: api.socketPath,
  })
  const wrong = await cli(['unseal', '--key-file', path.join(dir, 'wrong')])
  t.equal(wrong.code, 1)
  t.match(wrong.stderr, /Error unsealing: wrong key file/)
  const noTty = await cli(['unseal'])
  t.equal(noTty.code, 2)
  t.match(noTty.stderr, /no terminal to ask for the passphrase/)
  t.equal(
    (await cli(['unseal', '--key-file', path.join(dir, 'key'), '--passphrase-file', path.join(dir, 'pass')])).code,
    2,
  )
  const ok = await cli(['unseal', '--key-file', path.join(dir, 'key')])
  t.equal(ok.code, 0)
  t.match(ok.stdout, /^Sealed\s+false$/m)
  t.equal((await cli(['rotate'])).stdout, 'Success! Rotated the encryption key; the key term is now 2.\n')
  t.same(JSON.parse((await cli(['rotate', '--format', 'json'])).stdout), { term: 3 })
})

t.test('unseal with a passphrase file', async (t) => {
  const dir = t.testdir({ pass: 'open sesame\n', wrong: 'open sesame!\n' })
  const api = await startTestApi(t, {
    core: await coreWith({ kind: 'passphrase', passphrase: Buffer.from('open sesame') }),
  })
  api.core.seal()
  const cli = (args: string[]) => runCli(args, { env: { SECRETFS_ADDR: api.socketPath } })
  t.match((await cli(['unseal', '--passphrase-file', path.join(dir, 'wrong')])).stderr, /wrong passphrase/)
  t.equal(
    (await cli(['unseal', '--passphrase-file', path.join(dir, 'pass')])).code,
    0,
    'the trailing line break is not part of it',
  )
  t.equal(api.core.sealed, false)
})
