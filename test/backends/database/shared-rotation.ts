// Two daemons sharing one PostgreSQL store rotate the same passwords at the same moment, against a
// real PostgreSQL 15: a static role's (rotate-role on both at once, as a manual rotation meets the
// leader's scheduled one) and the configuration's own (rotate-root). Each rotation sets a password
// in the database and then stores it; run interleaved, the last one set would not be the last one
// stored, and the stored password would no longer log in. They take turns, so it always does.
// Each daemon's writes to the store are held back a random moment, so that without turns the
// order in which the two set their passwords and the order in which they store them often differ.
import t, { type Test } from 'tap'
import { Core } from '../../../src/core/core.js'
import { encodeFields } from '../../../src/core/secret-data.js'
import { PostgresStorage } from '../../../src/storage/postgres-storage.js'
import type { StorageOp } from '../../../src/storage/storage.js'
import { havePostgres, startPostgres } from '../../helpers/postgres.js'

const ROUNDS = 8
const unlock = { kind: 'key-file', key: Buffer.alloc(32, 5) } as const
const write = (core: Core, p: string, fields: Record<string, unknown> = {}) => core.write(p, encodeFields(fields))
const readJson = async <T>(core: Core, p: string) => JSON.parse(Buffer.from((await core.read(p)).value).toString()) as T

if (havePostgres(t)) {
  const pg = await startPostgres(t)
  const url = await pg.createDatabase()

  class SlowStorage extends PostgresStorage {
    override async batch(ops: StorageOp[]): Promise<void> {
      await new Promise((r) => setTimeout(r, Math.random() * 40))
      return super.batch(ops)
    }
  }

  const core = async (t: Test, initialize: boolean) => {
    const c = new Core({ storage: new SlowStorage({ url }) })
    if (initialize) await c.initialize(unlock)
    await c.unseal(unlock)
    t.teardown(() => c.close())
    return c
  }

  /** Whether `check` holds within a few seconds (another daemon's change arrives by notification). */
  const soon = async (check: () => Promise<boolean>) => {
    for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 50)))
      if (await check().catch(() => false)) return true
    return false
  }
  const logsIn = async (user: string, password: string) =>
    (await pg.psql('SELECT current_user', { user, password })).stdout.trim() === user

  const a = await core(t, true)
  const b = await core(t, false)
  await a.mount('database', 'database')
  t.ok(await soon(async () => b.mounts().some((m) => m.path === 'database/')), 'the second daemon has the mount')

  t.test('rotate-role on two daemons at once leaves the stored password the one that works', async (t) => {
    await pg.query(`CREATE ROLE shared_app LOGIN PASSWORD 'initial'`)
    t.teardown(() => pg.query('DROP ROLE IF EXISTS shared_app'))
    await write(a, 'database/config/pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${pg.host}:${pg.port}/postgres`,
      username: pg.superuser,
      password: pg.superPassword,
      allowed_roles: '*',
    })
    await write(a, 'database/static-roles/app', { db_name: 'pg', username: 'shared_app', rotation_period: '1h' })
    t.ok(await soon(async () => (await b.read('database/static-creds/app')) !== undefined), 'b has the role')
    for (let round = 1; round <= ROUNDS; round++) {
      await Promise.all([write(a, 'database/rotate-role/app'), write(b, 'database/rotate-role/app')])
      const { password } = await readJson<{ password: string }>(a, 'database/static-creds/app')
      t.ok(await logsIn('shared_app', password), `round ${round}: the stored password logs in`)
    }
  })

  t.test('rotate-root on two daemons at once leaves the configuration able to connect', async (t) => {
    await pg.query(`CREATE ROLE shared_root SUPERUSER LOGIN PASSWORD 'initial'`)
    t.teardown(() => pg.query('DROP ROLE IF EXISTS shared_root'))
    await write(a, 'database/config/own', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${pg.host}:${pg.port}/postgres`,
      username: 'shared_root',
      password: 'initial',
      allowed_roles: '*',
    })
    await write(a, 'database/roles/probe', { db_name: 'own', creation_statements: 'CREATE ROLE "{{name}}"' })
    t.ok(await soon(async () => (await b.read('database/config/own')) !== undefined), 'b has the configuration')
    for (let round = 1; round <= ROUNDS; round++) {
      await Promise.all([write(a, 'database/rotate-root/own'), write(b, 'database/rotate-root/own')])
      // Each daemon connects with the password stored last (a user is made and its lease revoked).
      for (const [name, c] of [['a', a] as const, ['b', b] as const]) {
        t.ok(
          await soon(async () => {
            const { lease } = await c.read('database/creds/probe')
            if (lease) await c.revokeLease(lease.id)
            return lease !== undefined
          }),
          `round ${round}: ${name} connects with the stored password`,
        )
      }
    }
  })
}
