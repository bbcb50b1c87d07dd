// The sys/ mount: read-only files that describe the running system, generated when read.

import { formatMountsTable } from '../format/mounts-table.js'
import type { MountEntry } from '../core/mount-table.js'
import { notDir, notFound, readOnly } from '../errors.js'
import type { Backend, EntryInfo, ReadResult } from './backend.js'

export interface SystemInfo {
  mounts(): MountEntry[]
  status(): Record<string, unknown>
}

/** The JSON shape of the mount table, as Vault's GET /v1/sys/mounts gives it. */
export function mountsJson(entries: MountEntry[]): Record<string, unknown> {
  // fromEntries defines own properties, so no mount path can reach a prototype.
  return Object.fromEntries(
    [...entries]
      .sort((a, b) => (a.path < b.path ? -1 : 1))
      .map((e) => [
        e.path,
        {
          type: e.type,
          description: e.description,
          uuid: e.uuid,
          config: { default_lease_ttl: e.config.defaultLeaseTtl, max_lease_ttl: e.config.maxLeaseTtl },
        },
      ]),
  )
}

/** The files, by name: a Map, so that `sys/constructor` is simply not one of them. */
const FILES = new Map<string, (info: SystemInfo) => string>([
  ['mounts', (info) => formatMountsTable(info.mounts())],
  ['mounts.json', (info) => JSON.stringify(mountsJson(info.mounts()), null, 2) + '\n'],
  ['seal-status', (info) => JSON.stringify(info.status(), null, 2) + '\n'],
  ['health', (info) => JSON.stringify({ ...info.status(), healthy: true }, null, 2) + '\n'],
])

/** Generated files report this size to stat; a read may return less (see the fs layer). */
const SIZE_BOUND = 1 << 20

export class SystemBackend implements Backend {
  readonly #info: SystemInfo
  readonly #started = new Date()

  constructor(info: SystemInfo) {
    this.#info = info
  }

  async stat(path: string): Promise<EntryInfo | undefined> {
    const t = this.#started
    if (path === '') return { kind: 'dir', size: 0, created: t, modified: t, readOnly: true }
    if (!FILES.has(path)) return undefined
    return { kind: 'file', size: SIZE_BOUND, created: t, modified: new Date(), generated: true, readOnly: true }
  }

  async read(path: string): Promise<ReadResult> {
    const make = FILES.get(path)
    if (!make) throw notFound()
    const now = new Date()
    return {
      value: Buffer.from(make(this.#info)),
      created: this.#started,
      modified: now,
      generated: true,
      readOnly: true,
    }
  }

  async list(path: string): Promise<string[]> {
    if (path === '') return [...FILES.keys()].sort()
    if (FILES.has(path)) throw notDir()
    throw notFound()
  }

  async write(): Promise<void> {
    throw readOnly('sys/ is read-only')
  }
}
