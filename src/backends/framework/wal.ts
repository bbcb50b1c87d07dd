// Write-ahead records, as Vault's framework WAL: before a backend makes something outside the
// store (an IAM user, a database role, a new password), it stores a record of it, and drops the
// record once the thing is accounted for (its lease stored, its password saved) or undone. A
// record still there at unseal names something the daemon may have half made: the backend's
// recover() finishes or undoes it.

import sodium from 'sodium-native'
import type { StorageView } from '../../barrier/barrier.js'
import { getJson, putJson } from './json-entry.js'

/** No path of a mount maps here: backends store their paths' records under other prefixes. */
const PREFIX = 'wal/'

/** Stores `record`; returns its id. */
export async function putWal(storage: StorageView, record: object): Promise<string> {
  const id = Buffer.alloc(16)
  sodium.randombytes_buf(id)
  const key = id.toString('hex')
  await putJson(storage, PREFIX + key, record)
  return key
}

export async function deleteWal(storage: StorageView, id: string): Promise<void> {
  await storage.delete(PREFIX + id)
}

/** The records stored (made `before`, if given), oldest first. The caller checks each record's shape. */
export async function listWal<T>(
  storage: StorageView,
  before?: Date,
): Promise<{ id: string; created: Date; record: T }[]> {
  const out = []
  for (const id of await storage.list(PREFIX)) {
    if (id.endsWith('/')) continue
    const entry = await getJson<T>(storage, PREFIX + id)
    if (entry && (!before || entry.created < before)) out.push({ id, created: entry.created, record: entry.data })
  }
  return out.sort((a, b) => a.created.getTime() - b.created.getTime())
}
