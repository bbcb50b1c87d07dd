// config/lease: the lease and maximum lease of IAM user credentials, as Vault's durations.

import { invalid, notFound } from '../../errors.js'
import type { StorageView } from '../../barrier/barrier.js'
import { getJson, putJson } from '../framework/json-entry.js'
import type { PathSpec } from '../framework/path-backend.js'
import { fieldsValue, fileInfo } from '../framework/present.js'
import type { AwsState } from './state.js'

/** Seconds; 0 lets the core use the mount's (else the system's) default. */
export interface LeaseConfig {
  lease: number
  lease_max: number
}

const KEY = 'config/lease'

export async function readLeaseConfig(storage: StorageView) {
  return getJson<LeaseConfig>(storage, KEY)
}

/** Seconds as Go's time.Duration prints them, as Vault shows a lease: 2764800 → '768h0m0s'. */
export function goDuration(seconds: number): string {
  if (seconds === 0) return '0s'
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  if (h > 0) return `${h}h${m}m${s}s`
  if (m > 0) return `${m}m${s}s`
  return `${s}s`
}

const shown = (c: LeaseConfig) => ({ lease: goDuration(c.lease), lease_max: goDuration(c.lease_max) })

export function configLeasePath(state: AwsState): PathSpec {
  return {
    pattern: 'config/lease',
    what: 'the lease configuration (config/lease)',
    fields: { lease: 'duration', lease_max: 'duration' },
    async stat() {
      const entry = await readLeaseConfig(state.storage)
      return entry && fileInfo(entry, fieldsValue(shown(entry.data)).length)
    },
    async read() {
      const entry = await readLeaseConfig(state.storage)
      if (!entry) throw notFound('config/lease is not set: write lease=DURATION lease_max=DURATION to it')
      return { value: fieldsValue(shown(entry.data)), created: entry.created, modified: entry.modified }
    },
    async write(_params, d) {
      const lease = d.number('lease')
      const leaseMax = d.number('lease_max')
      if (lease === undefined) throw invalid("'lease' is a required field: a duration such as 1h")
      if (leaseMax === undefined) throw invalid("'lease_max' is a required field: a duration such as 24h")
      if (leaseMax > 0 && lease > leaseMax) throw invalid('lease must not exceed lease_max')
      const old = await readLeaseConfig(state.storage)
      await putJson(state.storage, KEY, { lease, lease_max: leaseMax } satisfies LeaseConfig, old?.created)
    },
  }
}
