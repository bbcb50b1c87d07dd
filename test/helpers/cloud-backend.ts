// A test backend type standing for a cloud API: each read of `creds/NAME` makes a "user" upstream
// and hands it out leased; revoke deletes it, and can be told to fail. Counts recoveries at unseal.
import type { Backend, BackendFactory, Lease } from '../../src/backends/backend.js'
import { Core, builtinBackends } from '../../src/core/core.js'
import { notFound } from '../../src/errors.js'
import { MemoryStorage } from '../../src/storage/memory-storage.js'

export interface Upstream {
  /** Users that exist "in the cloud". */
  users: Set<string>
  revoked: string[]
  /** Revocations of these users fail, as an unreachable API would. */
  failing: Set<string>
  recovered: number
  /** The lease request each read makes. */
  ttl: number
  maxTtl: number
  renewable: boolean
  renewCap?: number
}

let serial = 0
/** A backend whose every read of `creds/NAME` makes a user upstream and hands it out leased. */
export function cloud(up: Upstream): BackendFactory {
  return () => {
    const backend: Backend = {
      async stat(p) {
        const t0 = new Date(0)
        if (p === '' || p === 'creds') return { kind: 'dir', size: 0, created: t0, modified: t0 }
        return p.startsWith('creds/')
          ? { kind: 'file', size: 1 << 20, created: t0, modified: t0, generated: true }
          : undefined
      },
      async list() {
        return []
      },
      async read(p) {
        if (!p.startsWith('creds/')) throw notFound()
        const user = `${p.slice(6)}-${++serial}`
        up.users.add(user)
        return {
          value: Buffer.from(JSON.stringify({ user, security_token: null })),
          created: new Date(),
          modified: new Date(),
          lease: { ttl: up.ttl, maxTtl: up.maxTtl, renewable: up.renewable, data: { user } },
        }
      },
      async revoke(lease: Lease) {
        const user = lease.data.user as string
        if (up.failing.has(user)) throw new Error('the cloud is unreachable')
        up.users.delete(user)
        up.revoked.push(user)
      },
      ...(up.renewCap !== undefined && { renew: async (_l: Lease, ttl: number) => Math.min(ttl, up.renewCap!) }),
      async recover() {
        up.recovered++
      },
    }
    return backend
  }
}

export function upstream(over: Partial<Upstream> = {}): Upstream {
  return {
    users: new Set(),
    revoked: [],
    failing: new Set(),
    recovered: 0,
    ttl: 0,
    maxTtl: 0,
    renewable: true,
    ...over,
  }
}

/** A core in memory with the cloud backend as type `aws`, unsealed; closed in teardown. */
export async function cloudCore(t: { teardown(fn: () => unknown): void }, up: Upstream): Promise<Core> {
  const unlock = { kind: 'key-file', key: Buffer.alloc(32, 9) } as const
  const core = new Core({ storage: new MemoryStorage(), backends: { ...builtinBackends, aws: cloud(up) } })
  await core.initialize(unlock)
  await core.unseal(unlock)
  t.teardown(() => core.close())
  return core
}
