// Leases: what a backend handed out that must be revoked later. Each is stored through the
// barrier under its mount's uuid, with what revocation needs. Unmount and remount revoke every
// lease of the mount first, and stop if any revocation fails. (Expiry and renewal arrive with the
// first backend that issues leases.)

import sodium from 'sodium-native'
import type { Barrier } from '../barrier/barrier.js'
import type { Backend, Lease, LeaseData } from '../backends/backend.js'
import { busy, isKind } from '../errors.js'
import type { MountEntry } from './mount-table.js'

export const leasePrefix = (entry: Pick<MountEntry, 'uuid'>): string => `leases/${entry.uuid}/`

interface StoredLease extends Omit<Lease, 'issued' | 'expires' | 'maxExpires' | 'lastRenewal'> {
  maxExpires: number
  issued: number
  expires: number
}

export class LeaseManager {
  readonly #barrier: Barrier

  constructor(barrier: Barrier) {
    this.#barrier = barrier
  }

  async register(mount: MountEntry, path: string, ttl: number, data: LeaseData): Promise<Lease> {
    const suffix = Buffer.alloc(12)
    sodium.randombytes_buf(suffix)
    const now = Date.now()
    const stored: StoredLease = {
      id: `${mount.path}${path}/${suffix.toString('hex')}`,
      path,
      issued: now,
      expires: now + ttl * 1000,
      maxExpires: now + ttl * 1000,
      renewable: false,
      data,
    }
    await this.#barrier.put(leasePrefix(mount) + suffix.toString('hex'), Buffer.from(JSON.stringify(stored)))
    return toLease(stored)
  }

  async list(mount: MountEntry): Promise<Lease[]> {
    const out: Lease[] = []
    for (const key of await this.#barrier.list(leasePrefix(mount))) {
      const raw = await this.#barrier.get(leasePrefix(mount) + key)
      if (raw) out.push(toLease(JSON.parse(Buffer.from(raw).toString('utf8')) as StoredLease))
    }
    return out
  }

  /** Revokes every lease of `mount` through `backend`; throws `busy` at the first failure. */
  async revokeAll(mount: MountEntry, backend: Backend): Promise<void> {
    for (const lease of await this.list(mount)) {
      try {
        await backend.revoke?.(lease)
      } catch (e) {
        if (isKind(e, 'sealed')) throw e
        throw busy('revoking a lease of the mount failed', { cause: e })
      }
      await this.#barrier.delete(leasePrefix(mount) + lease.id.slice(lease.id.lastIndexOf('/') + 1))
    }
  }
}

function toLease(s: StoredLease): Lease {
  return { ...s, issued: new Date(s.issued), expires: new Date(s.expires), maxExpires: new Date(s.maxExpires) }
}
