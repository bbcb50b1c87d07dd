// The mount table: which backend is mounted where. Stored through the barrier as one entry. A
// mount's data lives under a prefix named by its uuid, so a remount rewrites only this table.

import sodium from 'sodium-native'
import { integrity } from '../errors.js'

export const MOUNT_TABLE_PATH = 'core/mounts'

export interface MountConfig {
  /** Seconds; 0 means the system default. */
  defaultLeaseTtl: number
  maxLeaseTtl: number
}

export interface MountEntry {
  /** One name and a slash, such as 'secret/'. */
  path: string
  type: string
  description: string
  uuid: string
  config: MountConfig
}

export const dataPrefix = (entry: Pick<MountEntry, 'uuid'>): string => `logical/${entry.uuid}/`

export function defaultMounts(): MountEntry[] {
  return [
    newEntry('secret/', 'generic', 'generic secret storage'),
    newEntry('sys/', 'system', 'system endpoints used for control, policy and debugging'),
  ]
}

export function newEntry(path: string, type: string, description: string, config?: Partial<MountConfig>): MountEntry {
  return {
    path,
    type,
    description,
    uuid: randomUuid(),
    config: { defaultLeaseTtl: config?.defaultLeaseTtl ?? 0, maxLeaseTtl: config?.maxLeaseTtl ?? 0 },
  }
}

export function encodeTable(entries: MountEntry[]): Buffer {
  return Buffer.from(JSON.stringify({ version: 1, entries }))
}

export function decodeTable(raw: Uint8Array): MountEntry[] {
  try {
    const table = JSON.parse(Buffer.from(raw).toString('utf8')) as { version: number; entries: MountEntry[] }
    if (table.version === 1 && Array.isArray(table.entries)) return table.entries
  } catch {}
  throw integrity('the mount table is malformed')
}

/** A random (version 4) UUID from libsodium's generator. */
export function randomUuid(): string {
  const b = Buffer.alloc(16)
  sodium.randombytes_buf(b)
  b[6] = (b[6]! & 0x0f) | 0x40
  b[8] = (b[8]! & 0x3f) | 0x80
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}
