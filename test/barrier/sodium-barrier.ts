// The barrier over a real SQLite file: rotation, tampering, what the raw bytes reveal, unsealing.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import sodium from 'sodium-native'
import type { BackendFactory } from '../../src/backends/backend.js'
import { GenericBackend } from '../../src/backends/generic-backend.js'
import { Core, builtinBackends } from '../../src/core/core.js'
import { SqliteStorage } from '../../src/storage/sqlite-storage.js'
import type { Unlock } from '../../src/barrier/seal-config.js'
import { kind } from '../helpers/error-match.js'
import { watchSecureMemory } from '../helpers/secure-memory.js'

const keyA: Unlock = { kind: 'key-file', key: Buffer.alloc(32, 1) }
const keyB: Unlock = { kind: 'key-file', key: Buffer.alloc(32, 2) }

async function openCore(file: string, unlock: Unlock = keyA): Promise<Core> {
  const core = new Core({ storage: new SqliteStorage(file) })
  if (!(await core.initialized())) await core.initialize(unlock)
  await core.unseal(unlock)
  return core
}

const text = async (core: Core, p: string) => Buffer.from((await core.read(p)).value).toString()

t.test('a: rotate, write more, re-read everything, reopen and re-read', async (t) => {
  const file = path.join(t.testdir(), 'store.db')
  let core = await openCore(file)
  const written = new Map<string, string>()
  const write = async (p: string, v: string) => (await core.write(p, Buffer.from(v)), written.set(p, v))
  for (let i = 0; i < 20; i++) await write(`secret/before/${i}`, `v${i}`)
  t.equal(core.sealStatus().term, 1)
  t.equal(await core.rotate(), 2)
  t.equal(await core.rotate(), 3)
  for (let i = 0; i < 20; i++) await write(`secret/after/${i}`, `w${i}`)
  await write('secret/before/0', 'rewritten under term 3')
  for (const [p, v] of written) t.equal(await text(core, p), v)
  await core.close()

  core = await openCore(file)
  t.teardown(() => core.close())
  t.equal(core.sealStatus().term, 3, 'the newest term is still active after reopening')
  let ok = 0
  for (const [p, v] of written) if ((await text(core, p)) === v) ok++
  t.equal(ok, written.size, 'every secret reads back after reopening')
})

t.test('b: flipped bytes and swapped ciphertexts are integrity errors; the rest still reads', async (t) => {
  const file = path.join(t.testdir(), 'store.db')
  const core = await openCore(file)
  for (const n of ['one', 'two', 'three', 'four']) await core.write(`secret/${n}`, Buffer.from(`value of ${n}`))
  // Find the rows by value length; names and values are encrypted, so match by reading each back.
  const keyOf = async (p: string) => {
    const before = rows(file)
    await core.write(p, Buffer.from(`value of ${p.slice(7)}`)) // rewrite: the row's value changes
    const after = rows(file)
    return [...after.keys()].find((k) => !before.get(k)?.equals(after.get(k)!))!
  }
  const kOne = await keyOf('secret/one')
  const kTwo = await keyOf('secret/two')
  const kThree = await keyOf('secret/three')
  await core.close()

  const db = new Database(file)
  const get = (k: string) => (db.prepare('SELECT value FROM entries WHERE key = ?').get(k) as { value: Buffer }).value
  const flipped = Buffer.from(get(kOne))
  flipped[flipped.length - 5]! ^= 0x01
  db.prepare('UPDATE entries SET value = ? WHERE key = ?').run(flipped, kOne)
  db.prepare('UPDATE entries SET value = ? WHERE key = ?').run(get(kThree), kTwo)
  db.close()

  const again = await openCore(file)
  t.teardown(() => again.close())
  await t.rejects(again.read('secret/one'), kind('integrity'), 'a flipped byte')
  await t.rejects(again.read('secret/two'), kind('integrity'), "another entry's ciphertext")
  // A stat reads the entry (with whether it is a directory, in one query) and checks it too.
  await t.rejects(again.stat('secret/one'), kind('integrity'), 'a stat of a flipped byte')
  await t.rejects(again.stat('secret/two'), kind('integrity'), "a stat of another entry's ciphertext")
  t.equal(await text(again, 'secret/three'), 'value of three')
  t.equal(await text(again, 'secret/four'), 'value of four')
})

/** Fails `t` for each needle (as UTF-8, UTF-16 or base64) found in a file of `dir` (the store, its WAL). */
function scanFiles(t: Pick<Test, 'equal'>, dir: string, needles: string[], when: string): void {
  for (const f of fs.readdirSync(dir)) {
    const bytes = fs.readFileSync(path.join(dir, f))
    for (const c of needles) {
      const forms = [Buffer.from(c), Buffer.from(c, 'utf16le'), Buffer.from(Buffer.from(c).toString('base64'))]
      for (const n of forms) t.equal(bytes.indexOf(n), -1, `${when}: ${c} not in ${f}`)
    }
  }
}

t.test('c: the raw store reveals no mount path, name, value or configuration', async (t) => {
  const dir = t.testdir()
  const file = path.join(dir, 'store.db')
  const core = await openCore(file)
  const canaries = ['CANARYMOUNT', 'CANARYNAME', 'CANARYDIR', 'CANARYVALUE', 'CANARYDESC', 'CANARYFIELD']
  await core.mount('CANARYMOUNT', 'generic', { description: 'CANARYDESC', config: { defaultLeaseTtl: 31337 } })
  await core.write('CANARYMOUNT/CANARYDIR/CANARYNAME', Buffer.from('CANARYVALUE'))
  await core.write('secret/CANARYNAME', Buffer.from(JSON.stringify({ CANARYFIELD: 'CANARYVALUE' })))
  await core.mkdir('secret/CANARYDIR')
  t.ok(
    fs.readdirSync(dir).some((f) => f.endsWith('-wal')),
    'the WAL is there to scan',
  )
  scanFiles(t, dir, [...canaries, 'secret', 'generic', '31337'], 'open')
  await core.close()
  scanFiles(t, dir, [...canaries, 'secret', 'generic', '31337'], 'closed')
})

t.test('c: leases are encrypted at rest: what revocation needs, their path and their id', async (t) => {
  const dir = t.testdir()
  const file = path.join(dir, 'store.db')
  // A backend that hands out a lease with every read, as a cloud-credentials backend would.
  const leasing: BackendFactory = (ctx) => {
    const generic = new GenericBackend(ctx)
    return {
      stat: (p) => generic.stat(p),
      list: (p) => generic.list(p),
      write: (p, v) => generic.write(p, v),
      read: async (p) => ({
        ...(await generic.read(p)),
        lease: { ttl: 60, maxTtl: 0, renewable: true, data: { user: 'CANARYLEASEUSER' } },
      }),
      revoke: async () => {},
    }
  }
  const core = new Core({ storage: new SqliteStorage(file), backends: { ...builtinBackends, leasing } })
  await core.initialize(keyA)
  await core.unseal(keyA)
  await core.mount('CANARYLEASEMOUNT', 'leasing')
  await core.write('CANARYLEASEMOUNT/CANARYLEASEPATH', Buffer.from('x'))
  const before = rows(file)
  const { lease } = await core.read('CANARYLEASEMOUNT/CANARYLEASEPATH')
  t.equal([...rows(file).keys()].filter((k) => !before.has(k)).length, 1, 'the lease is one new entry in the store')
  t.same(
    (await core.leases('CANARYLEASEMOUNT')).map((l) => [l.id, l.data]),
    [[lease!.id, { user: 'CANARYLEASEUSER' }]],
    'and reads back',
  )
  const suffix = lease!.id.slice(lease!.id.lastIndexOf('/') + 1)
  const needles = ['CANARYLEASEUSER', 'CANARYLEASEMOUNT', 'CANARYLEASEPATH', suffix]
  scanFiles(t, dir, needles, 'open')
  await core.close()
  scanFiles(t, dir, needles, 'closed')
})

t.test("the store shows a name's length only in 16-byte blocks", async (t) => {
  const file = path.join(t.testdir(), 'store.db')
  const core = await openCore(file)
  t.teardown(() => core.close())
  const overhead =
    sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES
  const blocks: Record<number, number> = {}
  for (const length of [1, 15, 16, 17]) {
    const before = rows(file)
    await core.write(`secret/${'n'.repeat(length)}`, Buffer.from('v'))
    const added = [...rows(file).keys()].filter((k) => !before.has(k))
    t.equal(added.length, 1, `a name of ${length} bytes: one new entry`)
    const encoded = added[0]!.slice(added[0]!.lastIndexOf('/') + 1)
    blocks[length] = (Buffer.from(encoded, 'base64url').length - overhead) / 16
  }
  t.same(blocks, { 1: 1, 15: 1, 16: 2, 17: 2 }, 'names of 1 to 15 bytes take one block, of 16 and 17 two')
})

t.test('e: a wrong passphrase or key file unseals nothing and changes nothing', async (t) => {
  const dir = t.testdir()
  const byKey = path.join(dir, 'key.db')
  let core = await openCore(byKey, keyA)
  await core.write('secret/x', Buffer.from('x'))
  await core.close()
  const before = fs.readFileSync(byKey)
  core = new Core({ storage: new SqliteStorage(byKey) })
  await t.rejects(core.unseal(keyB), kind('unseal-failed', /wrong key file/))
  t.ok(core.sealed)
  await t.rejects(core.read('secret/x'), kind('sealed'))
  await t.rejects(core.unseal({ kind: 'passphrase', passphrase: Buffer.from('pw') }), {
    message: /unlocked with a key file/,
  })
  await t.rejects(core.unseal({ kind: 'key-file', key: Buffer.alloc(31) }), kind('invalid'))
  await core.unseal(keyA)
  t.equal(await text(core, 'secret/x'), 'x')
  await core.close()
  t.ok(fs.readFileSync(byKey).equals(before), 'the store file is unchanged')

  const byPass = path.join(dir, 'pass.db')
  const right: Unlock = { kind: 'passphrase', passphrase: Buffer.from('correct horse battery staple') }
  core = await openCore(byPass, right)
  await core.write('secret/y', Buffer.from('y'))
  await core.close()
  core = new Core({ storage: new SqliteStorage(byPass) })
  t.teardown(() => core.close())
  await t.rejects(
    core.unseal({ kind: 'passphrase', passphrase: Buffer.from('wrong horse') }),
    kind('unseal-failed', /wrong passphrase/),
  )
  t.ok(core.sealed)
  await core.unseal(right)
  t.equal(await text(core, 'secret/y'), 'y')
})

t.test('sealing drops the keys: every request fails until unsealed again', async (t) => {
  const core = await openCore(path.join(t.testdir(), 'store.db'))
  t.teardown(() => core.close())
  await core.write('secret/a', Buffer.from('a'))
  core.seal()
  for (const attempt of [
    () => core.read('secret/a'),
    () => core.write('secret/a', Buffer.from('b')),
    () => core.list('secret/'),
    () => core.mount('m', 'generic'),
    () => core.rotate(),
  ])
    await t.rejects(attempt() as Promise<unknown> as Promise<void>, kind('sealed'))
  t.throws(() => core.mounts(), kind('sealed'))
  t.same(core.sealStatus(), { initialized: true, sealed: true })
  await core.unseal(keyA)
  t.equal(await text(core, 'secret/a'), 'a')
})

t.test('seal and close zero every key held in secure memory', async (t) => {
  const memory = watchSecureMemory(t)
  const core = await openCore(path.join(t.testdir(), 'store.db'))
  await core.write('secret/a', Buffer.from('a'))
  await core.rotate()
  // The root key, the keyring's keys of both terms, the name key and the two keys derived from it.
  t.ok(memory.notZeroed().length >= 6, `keys are held: ${memory.notZeroed().length} buffers`)
  core.seal()
  t.same(memory.notZeroed(), [], 'sealed: every buffer of secure memory is zeros')
  await core.unseal(keyA)
  t.equal(await text(core, 'secret/a'), 'a')
  t.ok(memory.notZeroed().length >= 6, 'unsealed again: keys are held')
  await core.close()
  t.same(memory.notZeroed(), [], 'closed: every buffer of secure memory is zeros')
})

t.test('an existing store is never initialised again', async (t) => {
  const core = await openCore(path.join(t.testdir(), 'store.db'))
  t.teardown(() => core.close())
  await t.rejects(core.initialize(keyB), kind('exists'))
})

function rows(file: string): Map<string, Buffer> {
  // Read a consistent copy: the live file is held exclusively by the open store.
  const copy = file + '.copy'
  fs.copyFileSync(file, copy)
  if (fs.existsSync(file + '-wal')) fs.copyFileSync(file + '-wal', copy + '-wal')
  const db = new Database(copy, { readonly: false })
  const out = new Map<string, Buffer>()
  for (const r of db.prepare('SELECT key, value FROM entries').all() as { key: string; value: Buffer }[])
    out.set(r.key, r.value)
  db.close()
  for (const f of [copy, copy + '-wal', copy + '-shm']) fs.rmSync(f, { force: true })
  return out
}
