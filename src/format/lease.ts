// How a lease is shown: Vault's lease lookup fields, its durations ("768h0m0s"), and a leased
// secret's fields with its lease, as `cat creds/NAME` prints them.

import type { Lease } from '../backends/backend.js'
import { presentValue } from '../core/secret-data.js'

/** Seconds left before `lease` expires (0 once it has). */
export function ttlOf(lease: Lease, now = Date.now()): number {
  return Math.max(0, Math.round((lease.expires.getTime() - now) / 1000))
}

/** Vault's lookup of a lease (sys/leases/lookup), with the last revocation error when retrying. */
export function leaseInfo(lease: Lease, now = Date.now()): Record<string, unknown> {
  return {
    id: lease.id,
    issue_time: lease.issued.toISOString(),
    expire_time: lease.expires.toISOString(),
    last_renewal: lease.lastRenewal?.toISOString() ?? null,
    renewable: lease.renewable,
    ttl: ttlOf(lease, now),
    ...(lease.revokeError !== undefined && {
      revoke_error: lease.revokeError,
      revoke_attempts: lease.revokeAttempts ?? 0,
    }),
  }
}

/** A duration as Go (and so Vault) prints it: 768h0m0s, 1m30s, 45s. */
export function goDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h > 0 ? `${h}h${m}m${s % 60}s` : `${m}m${s % 60}s`
}

/**
 * A leased secret as one JSON document: the backend's fields, then lease_id, lease_duration
 * (seconds granted), lease_renewable and expiration. `fields` is the backend's JSON object (any
 * other value shows as the field `value`); the caller zeroes it.
 */
export function leasedSecretJson(fields: Uint8Array, lease: Lease): Buffer {
  const doc = {
    ...presentValue(fields).data,
    lease_id: lease.id,
    lease_duration: Math.round((lease.expires.getTime() - lease.issued.getTime()) / 1000),
    lease_renewable: lease.renewable,
    expiration: lease.expires.toISOString(),
  }
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n')
}
