// The real CLI against a control API served in this process: seal unseal.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { coreWith, socketDir, startTestApi } from '../helpers/api-fixture.js'
import { runCli } from '../helpers/cli-run.js'
import { startListener } from '../helpers/other-user.js'

t.test('status, seal, unseal, rotate', async (t) => {
  const dir = t.testdir({ key: Buffer.alloc(32, 3), wrong: Buffer.alloc(32, 4), pass: 'open sesame\n' })
  for (const f of ['key', 'wrong', 'pass']) await fs.chmod(path.join(dir, f), 0o600)
  const api = await startTestApi(t, { core: await coreWith({ kind: 'key-file', key: Buffer.alloc(32, 3) }) })
  const cli = (args: string[]) => runCli(args, { env: { SECRETFS_ADDR: api.socketPath } })
  const status = await cli(['status'])
  t.equal(
    status.stdout,
    `Key            Value\n---            -----\nInitialized    true\nSealed         false\nKey Term       1\nHA Enabled     false\nAddress        ${api.socketPath}\n`,
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
  const ok = await cli(['unseal', '--key-file', path.join(dir, 'key'), '--format', 'json'])
  t.same([ok.code, ok.stderr], [0, ''])
  t.same(JSON.parse(ok.stdout), { initialized: true, sealed: false, term: 1, address: api.socketPath })
  t.equal(ok.stdout, `${JSON.stringify(JSON.parse(ok.stdout), null, 2)}\n`, 'indented JSON, one line break after')
  const again = await cli(['unseal', '--format', 'json'])
  t.same(
    [again.code, JSON.parse(again.stdout), again.stderr],
    [0, { initialized: true, sealed: false, term: 1, address: api.socketPath }, ''],
    'already unsealed: the same answer, and nothing asked',
  )
  const table = await cli(['unseal'])
  t.same([table.code, table.stderr], [0, 'secretfs is already unsealed.\n'])
  t.match(table.stdout, /^Sealed\s+false$/m)
  t.equal((await cli(['rotate'])).stdout, 'Success! Rotated the encryption key; the key term is now 2.\n')
  t.same(JSON.parse((await cli(['rotate', '--format', 'json'])).stdout), { term: 3 })
})

t.test('unseal with a passphrase file', async (t) => {
  const dir = t.testdir({ pass: 'open sesame\n', wrong: 'open sesame!\n' })
  for (const f of ['pass', 'wrong']) await fs.chmod(path.join(dir, f), 0o600)
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

t.test('the unseal request carries the passphrase or key exactly as JSON encodes it', async (t) => {
  // Quotes, backslashes, every kind of control character, and text beyond ASCII; the file's
  // one trailing line break is not part of it.
  const passphrase = 'a "quoted" \\ back\\slash/\t\b\f\n\r\x00\x01\x1f\x7f é ü 中 😀 \u2028\u2029 end'
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 250) % 256))
  const dir = await socketDir(t)
  await fs.writeFile(path.join(dir, 'pass'), passphrase + '\n', { mode: 0o600 })
  await fs.writeFile(path.join(dir, 'key'), key, { mode: 0o600 })
  for (const [flag, file, body] of [
    ['--passphrase-file', 'pass', JSON.stringify({ passphrase })],
    ['--key-file', 'key', JSON.stringify({ key: key.toString('base64') })],
  ] as const) {
    const listener = await startListener(t, 0, path.join(dir, `${file}.sock`))
    const r = await runCli(['unseal', flag, path.join(dir, file)], { env: { SECRETFS_ADDR: listener.socketPath } })
    t.equal(r.code, 0, r.stderr)
    const wire = (await listener.received()).toString('latin1')
    const request = wire.slice(wire.indexOf('POST /v1/sys/unseal '))
    t.match(request, /\r\nContent-Type: application\/json\r\n/i)
    t.match(request, new RegExp(`\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`, 'i'))
    t.same(
      Buffer.from(request.slice(request.indexOf('\r\n\r\n') + 4), 'latin1'),
      Buffer.from(body),
      `${flag}: the body`,
    )
  }
})
