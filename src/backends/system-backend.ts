// The sys/ mount: read-only files that describe the running system, generated when read, and
// leases/, a view of every lease by its ID: `cat` one to look it up, `rm` it to revoke it, `rm -r`
// a directory to revoke every lease under it.

import { formatMountsTable } from '../format/mounts-table.js'
import type { MountEntry } from '../core/mount-table.js'
import { leaseInfo } from '../format/lease.js'
import { isDir, isKind, notDir, notFound, readOnly, reserved } from '../errors.js'
import type { Backend, EntryInfo, Lease, ReadResult } from './backend.js'

/** The lease subsystem, as sys/leases/ sees it (src/core/expiration.ts). */
export interface LeaseView {
  list(prefix: string): string[]
  isDir(path: string): boolean
  lookup(id: string): Lease
  revoke(id: string): Promise<void>
  revokePrefix(prefix: string): Promise<number>
}

export interface SystemInfo {
  mounts(): MountEntry[]
  status(): Record<string, unknown>
  leases: LeaseView
}

const LEASES = 'leases'

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
    const dir: EntryInfo = { kind: 'dir', size: 0, created: t, modified: t, readOnly: true }
    if (path === '' || path === LEASES) return dir
    const id = leaseId(path)
    if (id !== undefined) {
      const lease = this.#lease(id)
      if (lease)
        return { kind: 'file', size: SIZE_BOUND, created: lease.issued, modified: t, generated: true, readOnly: true }
      return this.#info.leases.isDir(id) ? dir : undefined
    }
    if (!FILES.has(path)) return undefined
    return { kind: 'file', size: SIZE_BOUND, created: t, modified: new Date(), generated: true, readOnly: true }
  }

  async read(path: string): Promise<ReadResult> {
    const id = leaseId(path)
    const lease = id === undefined ? undefined : this.#lease(id)
    const make = lease ? () => JSON.stringify(leaseInfo(lease), null, 2) + '\n' : FILES.get(path)
    if (!make) throw path === LEASES || (id !== undefined && this.#info.leases.isDir(id)) ? isDir() : notFound()
    return {
      value: Buffer.from(make(this.#info)),
      created: this.#started,
      modified: new Date(),
      generated: true,
      readOnly: true,
    }
  }

  async list(path: string): Promise<string[]> {
    if (path === '') return [...FILES.keys(), LEASES + '/'].sort()
    if (path === LEASES) return this.#info.leases.list('')
    const id = leaseId(path)
    if (id !== undefined) {
      if (this.#info.leases.isDir(id)) return this.#info.leases.list(id + '/')
      if (this.#lease(id)) throw notDir()
    }
    if (FILES.has(path)) throw notDir()
    throw notFound()
  }

  async write(): Promise<void> {
    throw readOnly('sys/ is read-only')
  }

  /** `rm sys/leases/ID` revokes the lease. */
  async delete(path: string): Promise<void> {
    const id = leaseId(path)
    if (id === undefined) throw readOnly('sys/ is read-only')
    if (!this.#lease(id)) throw this.#info.leases.isDir(id) ? isDir() : notFound()
    await this.#info.leases.revoke(id)
  }

  /** `rmdir` (the last step of `rm -r`) of a directory in sys/leases/ revokes every lease under it. */
  async rmdir(path: string): Promise<void> {
    if (path === LEASES) throw reserved('sys/leases itself stays; remove the leases or directories in it')
    const id = leaseId(path)
    if (id === undefined) throw readOnly('sys/ is read-only')
    if (this.#lease(id)) throw notDir()
    await this.#info.leases.revokePrefix(id + '/')
  }

  #lease(id: string): Lease | undefined {
    try {
      return this.#info.leases.lookup(id)
    } catch (e) {
      if (isKind(e, 'not-found')) return undefined
      throw e
    }
  }
}

/** The lease ID a path in sys/leases/ names ('leases/aws/creds/x/ID' → 'aws/creds/x/ID'). */
function leaseId(path: string): string | undefined {
  return path.startsWith(LEASES + '/') ? path.slice(LEASES.length + 1) : undefined
}
