// What the store promises against someone who can edit its file (sqlite3 on the real SQLite store):
// the keyring can't be rolled back behind entries of a newer term, new writes use the newest
// term, deleted ciphertext doesn't linger, tampered Argon2id limits are refused at once. And what
// it does not promise: an entry put back to an older copy of itself reads as that older value.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import sodium from 'sodium-native'
import { Core } from '../../src/core/core.js'
import { SqliteStorage } from '../../src/storage/sqlite-storage.js'
import type { Unlock } from '../../src/barrier/seal-config.js'
import { kind } from '../helpers/error-match.js'

const key: Unlock = { kind: 'key-file', key: Buffer.alloc(32, 3) }

async function openCore(file: string, unlock: Unlock = key): Promise<Core> {
  const core = new Core({ storage: new SqliteStorage(file) })
  if (!(await core.initialized())) await core.initialize(unlock)
  await core.unseal(unlock)
  return core
}

/** Runs `fn` on the raw SQLite file of a closed store. */
function raw<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file)
  try {
    return fn(db)
  } finally {
    db.close()
  }
}

const getRow = (db: Database.Database, k: string) =>
  (db.prepare('SELECT value FROM entries WHERE key = ?').get(k) as { value: Buffer } | undefined)?.value
const putRow = (db: Database.Database, k: string, v: Buffer) =>
  db.prepare('INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)').run(k, v)
const allRows = (db: Database.Database) =>
  new Map(
    (db.prepare('SELECT key, value FROM entries').all() as { key: string; value: Buffer }[]).map((r) => [
      r.key,
      r.value,
    ]),
  )

/** The physical key of the entry a write changes. */
async function rowOf(file: string, core: Core, p: string, value: string): Promise<string> {
  await core.close()
  const before = raw(file, allRows)
  const again = await openCore(file)
  await again.write(p, Buffer.from(value))
  await again.close()
  const after = raw(file, allRows)
  const changed = [...after.keys()].filter((k) => !before.get(k)?.equals(after.get(k)!))
  if (changed.length !== 1) throw new Error(`expected one changed row, saw ${changed.length}`)
  return changed[0]!
}

t.test('a keyring put back from before a rotate is refused, with or without writes since', async (t) => {
  for (const writeAfter of [true, false]) {
    const file = path.join(t.testdir(), `store-${writeAfter}.db`)
    const core = await openCore(file)
    await core.write('secret/old', Buffer.from('old'))
    await core.close()
    const oldKeyring = raw(file, (db) => getRow(db, 'seal/keyring')!)
    const rotated = await openCore(file)
    t.equal(await rotated.rotate(), 2)
    if (writeAfter) await rotated.write('secret/new', Buffer.from('written under term 2'))
    await rotated.close()
    raw(file, (db) => putRow(db, 'seal/keyring', oldKeyring))

    const victim = new Core({ storage: new SqliteStorage(file) })
    t.teardown(() => victim.close())
    await t.rejects(
      victim.unseal(key),
      kind('integrity', /keyring was rolled back.*term 2.*term 1/),
      `refused (${writeAfter ? 'with' : 'without'} writes after the rotate)`,
    )
    t.ok(victim.sealed, 'stays sealed: nothing can be written under the old key')
  }
})

t.test('writes after a rotate use the new term, in the raw header', async (t) => {
  const file = path.join(t.testdir(), 'store.db')
  let core = await openCore(file)
  const first = await rowOf(file, core, 'secret/a', 'one')
  t.equal(
    raw(file, (db) => getRow(db, first)!.readUInt32BE(1)),
    1,
    'term 1 before',
  )
  core = await openCore(file)
  t.equal(await core.rotate(), 2)
  const second = await rowOf(file, core, 'secret/a', 'two')
  t.equal(second, first, 'the same entry')
  t.equal(
    raw(file, (db) => getRow(db, second)!.readUInt32BE(1)),
    2,
    'rewritten under term 2',
  )
  const other = await rowOf(file, await openCore(file), 'secret/b', 'new')
  t.equal(
    raw(file, (db) => getRow(db, other)!.readUInt32BE(1)),
    2,
    'a new entry under term 2',
  )
})

t.test('not detected, as documented: an entry put back to an older copy of itself', async (t) => {
  const file = path.join(t.testdir(), 'store.db')
  const row = await rowOf(file, await openCore(file), 'secret/a', 'version one')
  const older = raw(file, (db) => getRow(db, row)!)
  await rowOf(file, await openCore(file), 'secret/a', 'version two')
  raw(file, (db) => putRow(db, row, older))
  const core = await openCore(file)
  t.teardown(() => core.close())
  t.equal(Buffer.from((await core.read('secret/a')).value).toString(), 'version one')
})

t.test("a deleted secret's ciphertext does not linger in the file (secure_delete)", async (t) => {
  const dir = t.testdir()
  const file = path.join(dir, 'store.db')
  const core = await openCore(file)
  await core.write('secret/filler', Buffer.alloc(3000, 'f'))
  const row = await rowOf(file, core, 'secret/gone', 'x'.repeat(2000))
  const ciphertext = raw(file, (db) => getRow(db, row)!)
  const again = await openCore(file)
  await again.delete('secret/gone')
  await again.close()
  const sealed = ciphertext.subarray(ciphertext.length - 64) // the tag and the last ciphertext bytes
  for (const f of fs.readdirSync(dir)) t.equal(fs.readFileSync(path.join(dir, f)).indexOf(sealed), -1, `not in ${f}`)
})

t.test('Argon2id: created with MODERATE limits; tampered limits refused at once, with a clear error', async (t) => {
  const file = path.join(t.testdir(), 'store.db')
  const pass: Unlock = { kind: 'passphrase', passphrase: Buffer.from('a long and correct passphrase') }
  const core = await openCore(file, pass)
  await core.close()
  const config = raw(file, (db) => JSON.parse(getRow(db, 'seal/config')!.toString()) as Record<string, any>)
  t.same(
    [config.kdf.algorithm, config.kdf.opslimit, config.kdf.memlimit],
    ['argon2id13', sodium.crypto_pwhash_OPSLIMIT_MODERATE, sodium.crypto_pwhash_MEMLIMIT_MODERATE],
  )
  t.equal(Buffer.from(config.kdf.salt, 'base64').length, sodium.crypto_pwhash_SALTBYTES)

  const tampered: [string, (kdf: Record<string, unknown>) => void][] = [
    ['opslimit 0', (k) => (k.opslimit = 0)],
    ['opslimit 2^32', (k) => (k.opslimit = 2 ** 32)],
    ['memlimit 1 KiB', (k) => (k.memlimit = 1024)],
    ['memlimit 4 TiB', (k) => (k.memlimit = 2 ** 42)],
    ['memlimit not a number', (k) => (k.memlimit = '268435456')],
    ['a short salt', (k) => (k.salt = Buffer.alloc(4).toString('base64'))],
    ['another algorithm', (k) => (k.algorithm = 'argon2i13')],
  ]
  for (const [what, change] of tampered) {
    const copy = structuredClone(config)
    change(copy.kdf)
    raw(file, (db) => putRow(db, 'seal/config', Buffer.from(JSON.stringify(copy))))
    const victim = new Core({ storage: new SqliteStorage(file) })
    await t.rejects(victim.unseal(pass), kind('integrity', /seal configuration/), what)
    await victim.close()
  }
})
