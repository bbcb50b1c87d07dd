// The core: unseals the barrier, keeps the mount table and router, and serves every request of
// the front ends (the filesystem and the control API) by routing it to a backend.

import type { Backend, BackendFactory, EntryInfo, Lease, LeaseRequest, ReadResult } from '../backends/backend.js'
import { awsBackend } from '../backends/aws/backend.js'
import { databaseBackend } from '../backends/database/backend.js'
import { genericBackend } from '../backends/generic-backend.js'
import { SystemBackend } from '../backends/system-backend.js'
import { UnavailableBackend } from '../backends/unavailable-backend.js'
import { BarrierView } from '../barrier/barrier-view.js'
import { SodiumBarrier } from '../barrier/sodium-barrier.js'
import type { Unlock } from '../barrier/seal-config.js'
import { SecureKey } from '../crypto/secure-key.js'
import {
  busy,
  crossMount,
  exists,
  invalid,
  isKind,
  notFound,
  reserved,
  sealed as sealedError,
  unsupported,
} from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import { MemoryStorage } from '../storage/memory-storage.js'
import type { Leadership, Storage } from '../storage/storage.js'
import type { BarrierChange } from '../barrier/barrier.js'
import { announced, type ChangeListener, type CoreChange } from './core-change.js'
import { Expiration, LEASES, leasePrefix, type LeaseTtls } from './expiration.js'
import {
  dataPrefix,
  decodeTable,
  defaultMounts,
  encodeTable,
  MOUNT_TABLE_PATH,
  newEntry,
  type MountConfig,
  type MountEntry,
} from './mount-table.js'
import { checkMountable, normalizeMountPath } from './paths.js'
import { Router, type Route } from './router.js'

export const DEFAULT_MAX_VALUE_SIZE = 1 << 20

/** Where each lease is a file (system-backend.ts). */
const SYS_LEASES = 'sys/leases/'

export const builtinBackends: Readonly<Record<string, BackendFactory>> = {
  generic: genericBackend,
  aws: awsBackend,
  database: databaseBackend,
}

export interface CoreOptions {
  storage: Storage
  /** Backend types by name (own properties only); defaults to the built-in ones. */
  backends?: Readonly<Record<string, BackendFactory>>
  maxValueSize?: number
  log?: Logger
  /** Dev mode: the store and its only key live in memory, so sealing would lose everything. */
  ephemeral?: boolean
  /** The system's default and max lease TTL, in seconds (Vault's 768h when not given). */
  leaseTtls?: Partial<LeaseTtls>
}

export interface MountOptions {
  description?: string
  config?: Partial<MountConfig>
}

export interface SealStatus {
  initialized: boolean
  sealed: boolean
  term?: number
  /** On a store that daemons share (unsealed): whether this one leads. */
  leader?: boolean
}

/**
 * On a store that daemons share, the write-ahead records the new leader undoes are those older
 * than this: a younger one may belong to a read still under way on another daemon.
 */
const RECOVERY_MIN_AGE_MS = 60_000

export type ReadResponse = Omit<ReadResult, 'lease' | 'leased'> & { lease?: Lease }

export class Core {
  readonly barrier: SodiumBarrier
  readonly storage: Storage
  readonly log: Logger
  /** Dev mode (see CoreOptions.ephemeral). */
  readonly ephemeral: boolean
  /** A Map, so that a type named by a user (`__proto__`, `constructor`) is only ever a key. */
  readonly #backends: ReadonlyMap<string, BackendFactory>
  readonly #maxValueSize: number
  readonly #router = new Router()
  readonly #leases: Expiration
  #initialized = false
  /** Serialises changes to the mount table. */
  #tableLock: Promise<unknown> = Promise.resolve()
  readonly #listeners = new Set<ChangeListener>()
  /** Following the changes other daemons sharing the store make; undefined when none can. */
  #stopFollowing: (() => void) | undefined
  /** Whether other daemons share the store (while unsealed). */
  get #shared(): boolean {
    return this.#stopFollowing !== undefined
  }
  #leadership: Leadership | undefined
  /** What listeners are still doing with the changes announced. */
  readonly #applying = new Set<Promise<unknown>>()

  constructor(options: CoreOptions) {
    this.storage = options.storage
    this.barrier = new SodiumBarrier(options.storage)
    this.#backends = new Map(Object.entries(options.backends ?? builtinBackends))
    this.#maxValueSize = options.maxValueSize ?? DEFAULT_MAX_VALUE_SIZE
    this.log = options.log ?? silentLogger
    this.ephemeral = options.ephemeral ?? false
    this.#leases = new Expiration({
      barrier: this.barrier,
      log: this.log,
      owner: (uuid) => this.#router.byUuid(uuid),
      // Its file in sys/leases/ is gone.
      ended: (lease) => this.#emit({ kind: 'removed', path: `${SYS_LEASES}${lease.id}` }),
      ...(options.leaseTtls && { system: options.leaseTtls }),
    })
  }

  /** A core on in-memory storage, initialised with a random key and unsealed: dev mode. */
  static async dev(options: Omit<CoreOptions, 'storage'> = {}): Promise<Core> {
    const core = new Core({ ...options, storage: new MemoryStorage(), ephemeral: true })
    const key = SecureKey.random(32)
    try {
      const unlock: Unlock = { kind: 'key-file', key: key.bytes }
      await core.initialize(unlock)
      await core.unseal(unlock)
    } finally {
      key.dispose()
    }
    return core
  }

  get backendTypes(): string[] {
    return [...this.#backends.keys()]
  }

  // ---- seal ----

  async initialized(): Promise<boolean> {
    return (this.#initialized ||= await this.barrier.initialized())
  }

  async initialize(unlock: Unlock): Promise<void> {
    await this.barrier.initialize(unlock)
    this.#initialized = true
  }

  get sealed(): boolean {
    return this.barrier.sealed
  }

  /** Unseals and loads the mount table (creating the default one in a new store). */
  async unseal(unlock: Unlock): Promise<void> {
    if (!this.barrier.sealed) return
    await this.barrier.unseal(unlock)
    try {
      // A change another daemon makes from here on is heard of, even before this one listens.
      const since = await this.storage.changes?.()
      await this.#loadMounts()
      if (this.#share(since)) await this.#leases.restore()
      else {
        await this.#recover()
        await this.#leases.restore()
        for (const { backend } of this.#router.routes()) backend.start?.()
      }
    } catch (e) {
      this.seal()
      throw e
    }
    this.log.info('unsealed')
  }

  seal(): void {
    this.#stopFollowing?.()
    this.#stopFollowing = undefined
    // Another daemon sharing the store takes the lead.
    void this.#leadership?.close().catch((e: unknown) => this.log.error('giving up the lead failed', e))
    this.#leadership = undefined
    this.#leases.stop()
    for (const { backend } of this.#router.routes()) backend.close?.()
    this.#router.clear()
    const wasUnsealed = !this.barrier.sealed
    this.barrier.seal()
    if (!wasUnsealed) return
    this.log.info('sealed')
    this.#emit({ kind: 'sealed' })
  }

  /**
   * Resolves once the listeners have followed every change announced so far (the filesystem has
   * told the kernel what it may no longer cache). The control API waits for it before it answers,
   * so that whatever its client does next on the mount sees the change.
   */
  async changesApplied(): Promise<void> {
    await Promise.all([...this.#applying])
  }

  /** Calls `listener` after each change; returns what stops it. */
  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  async rotate(): Promise<number> {
    // Two daemons rotating at once would each make a different key of the same term.
    if (this.#shared && !this.#leases.leading)
      throw invalid(
        'on a store that daemons share, the keyring is rotated by the one that leads (secretfs status says which)',
      )
    const term = await this.barrier.rotate()
    this.log.info(`keyring rotated to term ${term}`)
    return term
  }

  sealStatus(): SealStatus {
    const status: SealStatus = { initialized: this.#initialized, sealed: this.barrier.sealed }
    if (!this.barrier.sealed) status.term = this.barrier.keyStatus().term
    if (this.#shared) status.leader = this.#leases.leading
    return status
  }

  async close(): Promise<void> {
    this.seal()
    await this.storage.close()
  }

  // ---- mount table ----

  mounts(): MountEntry[] {
    this.#checkUnsealed()
    return this.#router.entries()
  }

  async mount(path: string, type: string, options: MountOptions = {}): Promise<MountEntry> {
    const mountPath = normalizeMountPath(path)
    return this.#withTable(async () => {
      checkMountable(mountPath)
      if (this.#router.get(mountPath)) throw exists('a backend is already mounted at that path')
      if (!this.#backends.has(type)) throw invalid(`unknown backend type; known types: ${this.backendTypes.join(', ')}`)
      checkConfig(options.config)
      const entry = newEntry(mountPath, type, options.description ?? '', options.config)
      // Built before the table is saved: a backend that cannot be built leaves no entry behind.
      const backend = this.#makeBackend(entry)
      await this.#saveTable([...this.#router.entries(), entry])
      this.#router.add({ entry, backend })
      backend.start?.()
      this.log.info(`mounted a ${type} backend`)
      return entry
    })
  }

  /** Revokes the mount's leases, then deletes its data and table entry in one transaction. */
  async unmount(path: string): Promise<void> {
    const mountPath = normalizeMountPath(path)
    await this.#withTable(async () => {
      const route = this.#mountedRoute(mountPath)
      await this.#leases.revokeMount(route.entry)
      const remaining = this.#router.entries().filter((e) => e !== route.entry)
      try {
        await this.barrier.batch([
          { op: 'put', path: MOUNT_TABLE_PATH, value: encodeTable(remaining) },
          { op: 'delete-prefix', prefix: dataPrefix(route.entry) },
          { op: 'delete-prefix', prefix: leasePrefix(route.entry) },
        ])
      } catch (e) {
        if (isKind(e, 'sealed')) throw e
        throw busy("deleting the mount's data failed; it stays mounted", { cause: e })
      }
      this.#router.remove(mountPath)
      route.backend.close?.()
      this.log.info(`unmounted a ${route.entry.type} backend`)
      this.#emit({ kind: 'removed', path: announced(mountPath) })
    })
  }

  /** Moves a mount to a new path: its data stays, its leases are revoked. */
  async remount(from: string, to: string): Promise<MountEntry> {
    const fromPath = normalizeMountPath(from)
    const toPath = normalizeMountPath(to)
    return this.#withTable(async () => {
      const route = this.#mountedRoute(fromPath)
      checkMountable(toPath)
      if (this.#router.get(toPath)) throw exists('a backend is already mounted at that path')
      await this.#leases.revokeMount(route.entry)
      const moved = { ...route.entry, path: toPath }
      await this.#saveTable(this.#router.entries().map((e) => (e === route.entry ? moved : e)))
      this.#router.remove(fromPath)
      route.entry.path = toPath
      this.#router.add(route)
      this.log.info(`remounted a ${route.entry.type} backend`)
      this.#emit({ kind: 'moved', from: announced(fromPath), to: announced(toPath) })
      return route.entry
    })
  }

  // ---- requests ----

  async stat(path: string): Promise<EntryInfo | undefined> {
    if (path === '' || path === '/') {
      this.#checkUnsealed()
      return { kind: 'dir', size: 0, created: new Date(0), modified: new Date(0) }
    }
    const { route, rest } = this.#route(path)
    return route.backend.stat(rest)
  }

  async read(path: string): Promise<ReadResponse> {
    const { route, rest } = this.#route(path)
    const { lease, leased, ...result } = await route.backend.read(rest)
    if (!lease) return result
    let registered: Lease
    try {
      registered = await this.#leases.register(route.entry, rest, lease)
    } catch (e) {
      // Nobody will ever hold this secret: it is undone now, or by the backend's recovery.
      result.value.fill(0)
      await this.#undo(route, rest, lease)
      throw e
    }
    await leased?.().catch((e: unknown) => this.log.error("a backend's record of a leased secret was not cleared", e))
    // A leased secret is a new one on every read.
    return { ...result, generated: true, readOnly: true, lease: registered }
  }

  async list(path: string): Promise<string[]> {
    if (path === '' || path === '/')
      return this.mounts()
        .map((e) => e.path)
        .sort()
    const { route, rest } = this.#route(path)
    return route.backend.list(rest)
  }

  /** Stores `value` at `path`; `source` is announced with the change (see CoreChange). */
  async write(path: string, value: Uint8Array, source?: unknown): Promise<void> {
    const { route, rest } = this.#route(path)
    const result = await op(route.backend.write).call(route.backend, rest, value)
    this.#emit({ kind: 'written', path: announced(path), source, value: result?.cacheable ? value : undefined })
  }

  async delete(path: string): Promise<void> {
    const { route, rest } = this.#route(path)
    await op(route.backend.delete).call(route.backend, rest)
    this.#emit({ kind: 'removed', path: announced(path) })
  }

  async mkdir(path: string): Promise<void> {
    const { route, rest } = this.#route(path)
    return op(route.backend.mkdir).call(route.backend, rest)
  }

  async rmdir(path: string): Promise<void> {
    const { route, rest } = this.#route(path)
    await op(route.backend.rmdir).call(route.backend, rest)
    this.#emit({ kind: 'removed', path: announced(path) })
  }

  async rename(from: string, to: string): Promise<void> {
    const a = this.#route(from)
    const b = this.#route(to)
    if (a.route !== b.route) throw crossMount()
    await op(a.route.backend.rename).call(a.route.backend, a.rest, b.rest)
    this.#emit({ kind: 'moved', from: announced(from), to: announced(to) })
  }

  // ---- leases ----

  /** The leases a mount has outstanding. */
  async leases(path: string): Promise<Lease[]> {
    return this.#leases.leasesOf(this.#mountedRoute(normalizeMountPath(path)).entry)
  }

  lookupLease(id: string): Lease {
    this.#checkUnsealed()
    return this.#leases.lookup(id)
  }

  /** Names under `prefix` in the tree of lease IDs ('' or ending in '/'); directories end in '/'. */
  listLeases(prefix: string): string[] {
    this.#checkUnsealed()
    return this.#leases.list(prefix)
  }

  renewLease(id: string, increment?: number): Promise<Lease> {
    this.#checkUnsealed()
    return this.#leases.renew(id, increment)
  }

  /** Revokes one lease now; an ID that names no lease is not an error (it may be gone already). */
  revokeLease(id: string): Promise<void> {
    this.#checkUnsealed()
    return this.#leases.revoke(id)
  }

  /** Revokes every lease under a prefix; `force` drops them without asking their backends. */
  revokeLeasePrefix(prefix: string, force = false): Promise<number> {
    this.#checkUnsealed()
    return this.#leases.revokePrefix(prefix, { force })
  }

  // ---- internals ----

  #route(path: string): { route: Route; rest: string } {
    this.#checkUnsealed()
    return this.#router.route(path)
  }

  #mountedRoute(mountPath: string): Route {
    this.#checkUnsealed()
    if (mountPath === 'sys/') throw reserved('sys/ cannot be unmounted or moved')
    const route = this.#router.get(mountPath)
    if (!route) throw notFound('no mount at that path')
    return route
  }

  /** Revokes a secret whose lease could not be stored; failing that, the backend's recovery will. */
  async #undo(route: Route, path: string, request: LeaseRequest): Promise<void> {
    const now = new Date()
    const lease: Lease = {
      id: '',
      path,
      issued: now,
      expires: now,
      maxExpires: now,
      renewable: false,
      data: request.data,
    }
    try {
      await route.backend.revoke?.(lease)
    } catch (e) {
      this.log.error('a secret whose lease could not be stored was not revoked', e)
    }
  }

  /** Lets each backend undo what reads left half made before the daemon last stopped. */
  async #recover(options?: { before?: Date }): Promise<void> {
    for (const { backend } of this.#router.routes())
      await backend.recover?.(options).catch((e: unknown) => this.log.error('a backend could not recover', e))
  }

  // ---- a store that daemons share ----

  /**
   * On a store that other daemons share, this one follows their changes and contends to lead.
   * The one that leads revokes leases at expiry, undoes what others left half made, and runs the
   * backends' timed work. Returns whether the store is shared.
   */
  #share(since?: number): boolean {
    const stop = this.barrier.watch(
      (change) => this.#follow(change),
      (e) => this.log.warn('a change another daemon made could not be taken up; the whole store is read again', e),
      since,
    )
    if (!stop) return false
    this.#stopFollowing = stop
    void this.#leases.lead(false)
    const leadership = this.storage.lead?.((leading) => {
      if (this.#leadership === leadership)
        void this.#leadershipChanged(leading).catch((e: unknown) =>
          this.log.error('taking or giving up the lead failed', e),
        )
    })
    this.#leadership = leadership
    return true
  }

  async #leadershipChanged(leading: boolean): Promise<void> {
    if (this.barrier.sealed) return
    this.log.info(leading ? 'this daemon now leads: it revokes leases when they expire' : 'this daemon no longer leads')
    // Expiry first: what is due is revoked on time, however long the recovery below takes.
    await this.#leases.lead(leading)
    if (leading) await this.#recover({ before: new Date(Date.now() - RECOVERY_MIN_AGE_MS) })
    for (const { backend } of this.#router.routes())
      if (leading) backend.start?.()
      else backend.stop?.()
  }

  /** Another daemon sharing the store changed it: the mount table, the leases and the front ends follow. */
  async #follow(change: BarrierChange): Promise<void> {
    if (this.barrier.sealed) return
    if ('all' in change) {
      await this.#reloadMounts()
      for (const { backend } of this.#router.routes()) backend.changedElsewhere?.('')
      await this.#leases.reload()
      this.#emit({ kind: 'reloaded' })
      return
    }
    for (const dir of change.dirs) {
      if (dir.startsWith(LEASES)) this.#leases.dropUnder(dir)
      else this.#changedElsewhere(dir)
    }
    for (const path of change.paths) {
      if (path === MOUNT_TABLE_PATH) await this.#reloadMounts()
      else if (path.startsWith(LEASES)) await this.#leases.reloadKey(path)
      else this.#changedElsewhere(path)
    }
  }

  /** An entry of a backend's data ('logical/UUID/rest', or a directory of them) changed elsewhere. */
  #changedElsewhere(path: string): void {
    const [top, uuid, ...rest] = path.split('/')
    if (top !== 'logical' || !uuid) return
    const route = this.#router.byUuid(uuid)
    if (!route) return
    route.backend.changedElsewhere?.(rest.join('/'))
    this.#emit({ kind: 'changed', path: announced(route.entry.path + rest.join('/')) })
  }

  /** Takes up the stored mount table: mounts made, moved or removed by another daemon. */
  async #reloadMounts(): Promise<void> {
    await this.#withTable(async () => {
      const raw = await this.barrier.get(MOUNT_TABLE_PATH)
      if (!raw || this.barrier.sealed) return
      const stored = new Map(decodeTable(raw).map((e) => [e.uuid, e]))
      for (const route of this.#router.routes()) {
        const now = stored.get(route.entry.uuid)
        if (!now) {
          this.#router.remove(route.entry.path)
          route.backend.close?.()
          this.#leases.dropUnder(leasePrefix(route.entry))
          this.#emit({ kind: 'removed', path: announced(route.entry.path) })
        } else if (now.path !== route.entry.path) {
          const from = route.entry.path
          this.#router.remove(from)
          route.entry.path = now.path
          this.#router.add(route)
          this.#emit({ kind: 'moved', from: announced(from), to: announced(now.path) })
        }
        stored.delete(route.entry.uuid)
      }
      for (const entry of stored.values()) {
        const route = { entry, backend: this.#routeBackend(entry) }
        this.#router.add(route)
        if (this.#leases.leading) route.backend.start?.()
      }
    })
  }

  #emit(change: CoreChange): void {
    for (const listener of this.#listeners) {
      try {
        const applying = listener(change)
        if (applying instanceof Promise) this.#track(applying)
      } catch (e) {
        // The change is made; a listener's failure must not report it as failed.
        this.log.error('a change listener failed', e)
      }
    }
  }

  #track(applying: Promise<unknown>): void {
    const settled = applying.catch((e: unknown) => this.log.error('a change listener failed', e))
    this.#applying.add(settled)
    void settled.finally(() => this.#applying.delete(settled))
  }

  #checkUnsealed(): void {
    if (this.barrier.sealed) throw sealedError()
  }

  async #loadMounts(): Promise<void> {
    const raw = await this.barrier.get(MOUNT_TABLE_PATH)
    let entries: MountEntry[]
    if (raw) entries = decodeTable(raw)
    else {
      entries = defaultMounts()
      await this.barrier.put(MOUNT_TABLE_PATH, encodeTable(entries))
    }
    this.#router.clear()
    for (const entry of entries) this.#router.add({ entry, backend: this.#routeBackend(entry) })
  }

  /** The backend of a stored mount entry; one of a type this build lacks is unavailable. */
  #routeBackend(entry: MountEntry): Backend {
    if (entry.type === 'system' || this.#backends.has(entry.type)) return this.#makeBackend(entry)
    // Kept as it is, so that a build that has the type serves it again; never deleted here.
    this.log.error(
      `the mount table names a backend type (${JSON.stringify(entry.type.slice(0, 64))}) that is not in this build; that mount is unavailable`,
    )
    return new UnavailableBackend(entry.type)
  }

  async #saveTable(entries: MountEntry[]): Promise<void> {
    await this.barrier.put(MOUNT_TABLE_PATH, encodeTable(entries))
  }

  #makeBackend(entry: MountEntry): Backend {
    if (entry.type === 'system')
      return new SystemBackend({
        mounts: () => this.mounts(),
        status: () => ({ ...this.sealStatus() }),
        leases: this.#leases,
      })
    const factory = this.#backends.get(entry.type)
    if (!factory) throw invalid('unknown backend type')
    return factory({
      storage: new BarrierView(this.barrier, dataPrefix(entry)),
      leases: {
        register: (path, request) => this.#leases.register(entry, path, request),
        // Only the mount's own leases: their IDs start with its path.
        revoke: async (id) => (id.startsWith(entry.path) ? this.#leases.revoke(id) : undefined),
        ttls: (request) => this.#leases.ttls(entry, request),
      },
      mount: () => entry,
      maxValueSize: this.#maxValueSize,
    })
  }

  #withTable<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tableLock.then(fn, fn)
    this.#tableLock = run.catch(() => {})
    return run
  }
}

/** A backend operation, or an `unsupported` error when the backend lacks it. */
function op<F>(fn: F | undefined): F {
  if (!fn) throw unsupported('this mount does not support that operation')
  return fn
}

function checkConfig(config: Partial<MountConfig> | undefined): void {
  for (const [name, v] of Object.entries(config ?? {}))
    if (v !== undefined && (!Number.isInteger(v) || v < 0))
      throw invalid(`${name === 'defaultLeaseTtl' ? 'default' : 'max'} lease TTL must be a whole number of seconds`)
  if (config?.defaultLeaseTtl && config.maxLeaseTtl && config.defaultLeaseTtl > config.maxLeaseTtl)
    throw invalid('the default lease TTL exceeds the max lease TTL')
}
