// A path-declared backend's own records: a JSON object with its times, stored through the mount's
// storage view (and so encrypted by the barrier). The plaintext buffers are zeroed once used:
// records such as the AWS root configuration hold a secret key.

import { integrity } from '../../errors.js'
import type { LockHeld, StorageView } from '../../barrier/barrier.js'

export interface JsonEntry<T> {
  created: Date
  modified: Date
  data: T
}

interface Stored {
  created: number
  modified: number
  data: unknown
}

export async function getJson<T>(storage: StorageView, key: string): Promise<JsonEntry<T> | undefined> {
  const raw = await storage.get(key)
  if (!raw) return undefined
  let stored: Stored
  try {
    stored = JSON.parse(Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('utf8')) as Stored
  } catch {
    throw integrity('a stored record of this mount is not the JSON it was written as')
  } finally {
    raw.fill(0)
  }
  return { created: new Date(stored.created), modified: new Date(stored.modified), data: stored.data as T }
}

/**
 * Stores `data` at `key`, keeping the creation time of what was there; with `whileHeld`, only while
 * that named lock is still this daemon's (else LockLost, see Storage.batch).
 */
export async function putJson(
  storage: StorageView,
  key: string,
  data: unknown,
  created?: Date,
  whileHeld?: LockHeld,
): Promise<void> {
  const now = Date.now()
  const stored: Stored = { created: created?.getTime() ?? now, modified: now, data }
  const encoded = Buffer.from(JSON.stringify(stored), 'utf8')
  try {
    await storage.batch([{ op: 'put', path: key, value: encoded }], whileHeld)
  } finally {
    encoded.fill(0)
  }
}
