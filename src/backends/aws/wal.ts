// Write-ahead records, as Vault's framework WAL: before an IAM user is created, a record naming it
// is stored, and it is dropped once the user's lease is stored (or the user is deleted again). A
// record still there at unseal names a user the daemon may have half made: recover() deletes it.

import sodium from 'sodium-native'
import type { StorageView } from '../../barrier/barrier.js'
import { getJson, putJson } from '../framework/json-entry.js'

/** No path of the mount maps here: user paths are stored under config/ and role/. */
const PREFIX = 'wal/'

export interface WalUser {
  kind: 'iam_user'
  username: string
}

/** Stores a record of `user`; returns its id. */
export async function putWal(storage: StorageView, user: WalUser): Promise<string> {
  const id = Buffer.alloc(16)
  sodium.randombytes_buf(id)
  const key = id.toString('hex')
  await putJson(storage, PREFIX + key, user)
  return key
}

export async function deleteWal(storage: StorageView, id: string): Promise<void> {
  await storage.delete(PREFIX + id)
}

export async function listWal(storage: StorageView): Promise<{ id: string; created: Date; user: WalUser }[]> {
  const out = []
  for (const id of await storage.list(PREFIX)) {
    if (id.endsWith('/')) continue
    const entry = await getJson<WalUser>(storage, PREFIX + id)
    if (entry) out.push({ id, created: entry.created, user: entry.data })
  }
  return out
}
