// Benchmark of the lease subsystem on a real SQLite store, against a backend that revokes at once:
// how long an unseal takes to restore 10,000 leases (aim: <= 1 s), and how long 1,000 leases that
// expire in the same second take to be revoked, from their expire time (aim: <= 5 s).
// Run: npm run build && node dist/scripts/bench-leases.js [--leases N] [--expiring N]
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { BackendFactory } from '../src/backends/backend.js'
import { Core, builtinBackends } from '../src/core/core.js'
import { SqliteStorage } from '../src/storage/sqlite-storage.js'

const unlock = { kind: 'key-file', key: Buffer.alloc(32, 42) } as const

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}

/** Hands out a lease of `ttl` seconds per read; revoking costs nothing. */
function instant(state: { ttl: number; revoked: number }): BackendFactory {
  const t0 = new Date()
  return () => ({
    stat: async () => ({ kind: 'dir', size: 0, created: t0, modified: t0 }),
    list: async () => [],
    read: async () => ({
      value: Buffer.from('{"access_key":"A","secret_key":"S","security_token":null}'),
      created: t0,
      modified: t0,
      lease: { ttl: state.ttl, maxTtl: 0, renewable: true, data: { user: 'u' } },
    }),
    revoke: async () => void state.revoked++,
  })
}

async function open(file: string, state: { ttl: number; revoked: number }): Promise<Core> {
  const core = new Core({ storage: new SqliteStorage(file), backends: { ...builtinBackends, instant: instant(state) } })
  if (!(await core.initialized())) await core.initialize(unlock)
  await core.unseal(unlock)
  return core
}

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6

async function main(): Promise<void> {
  const leases = arg('--leases', 10_000)
  const expiring = arg('--expiring', 1_000)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secretfs-bench-'))
  try {
    const state = { ttl: 3600, revoked: 0 }
    const file = path.join(dir, 'store.db')
    let core = await open(file, state)
    await core.mount('aws', 'instant')
    let start = process.hrtime.bigint()
    for (let i = 0; i < leases; i++) await core.read(`aws/creds/r${i % 100}`)
    const issueRate = leases / (ms(start) / 1000)
    await core.close()

    start = process.hrtime.bigint()
    core = await open(file, state)
    const unsealMs = ms(start)
    const restored = core.listLeases('aws/creds/').length

    // Leases that all expire in the same second: issued together, with a TTL of 2 s.
    state.ttl = 2
    const batch = await Promise.all(Array.from({ length: expiring }, (_, i) => core.read(`aws/creds/x${i % 10}`)))
    const lastExpiry = Math.max(...batch.map((r) => r.lease!.expires.getTime()))
    const firstExpiry = Math.min(...batch.map((r) => r.lease!.expires.getTime()))
    const before = state.revoked
    while (state.revoked - before < expiring) await new Promise((r) => setTimeout(r, 5))
    const revokedMs = Date.now() - lastExpiry
    await core.close()

    console.log(
      JSON.stringify(
        {
          leases,
          issued_per_second: Math.round(issueRate),
          unseal_restoring_ms: Math.round(unsealMs),
          restored_leases_listed_under_creds: restored > 0,
          expiring,
          expiry_spread_ms: lastExpiry - firstExpiry,
          all_revoked_ms_after_last_expiry: revokedMs,
        },
        null,
        2,
      ),
    )
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

await main()
