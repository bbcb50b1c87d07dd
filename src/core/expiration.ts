// Leases, as Vault's expiration manager keeps them: every secret a backend hands out that must be
// undone later (an IAM user, say) gets a lease, stored through the barrier with what revocation
// needs. A lease is renewed up to its max, revoked on demand (one, a prefix, or a forced prefix
// that asks no backend), and revoked by itself when it expires, within a second. A failed
// revocation is retried with backoff and stays listed with its error; it never holds up others.
// Sealing stops every timer; unsealing restores every lease and revokes at once what expired
// while the daemon was down or sealed. Backends know nothing of timers: they only answer
// revoke(lease) and, optionally, renew(lease, ttl).

import type { Backend, Lease, LeaseRequest } from '../backends/backend.js'
import type { Barrier } from '../barrier/barrier.js'
import { busy, invalid, isKind, notFound, SecretfsError, sealed } from '../errors.js'
import type { Logger } from '../log.js'
import { randomUuid, type MountEntry } from './mount-table.js'
import { TimerHeap } from './timer-heap.js'

/** Vault's system default and max lease TTL: 768h (32 days). */
export const SYSTEM_LEASE_TTL = 768 * 3600

export interface LeaseTtls {
  /** Seconds a lease lives when neither the backend nor the mount says. */
  defaultTtl: number
  /** Seconds from issue that no lease outlives. */
  maxTtl: number
}

/** Where leases are stored: under their mount's uuid, so an unmount deletes them with its data. */
export const leasePrefix = (entry: Pick<MountEntry, 'uuid'>): string => `${LEASES}${entry.uuid}/`
/** Where leases are stored, a directory per mount. */
export const LEASES = 'leases/'

export interface LeaseOwner {
  entry: MountEntry
  backend: Backend
}

export interface ExpirationOptions {
  barrier: Barrier
  log: Logger
  /** The mount a lease was issued by, found by the mount's uuid. */
  owner(uuid: string): LeaseOwner | undefined
  system?: Partial<LeaseTtls>
  now?: () => number
  /** Revocations under way at once, at most (each is a few calls to a remote service). */
  concurrency?: number
  /** A lease is gone: revoked, expired or dropped. */
  ended?: (lease: Lease) => void
}

/** The first retry of a failed revocation waits this long; each next one twice as long. */
const FIRST_RETRY_MS = 1000
const LAST_RETRY_MS = 5 * 60 * 1000

interface Held {
  lease: Lease
  /** The mount's uuid, and the lease's key in the barrier. */
  uuid: string
  key: string
  /** Seconds granted at issue: what a renewal without an increment asks for again. */
  ttl: number
  /** A revocation under way; another revoke of the same lease joins it. */
  revoking?: Promise<void>
}

/** The stored form: dates as milliseconds since the epoch. */
interface Stored {
  v: 1
  id: string
  path: string
  issued: number
  expires: number
  maxExpires: number
  ttl: number
  renewable: boolean
  lastRenewal?: number
  data: Lease['data']
}

export class Expiration {
  readonly #barrier: Barrier
  readonly #log: Logger
  readonly #owner: (uuid: string) => LeaseOwner | undefined
  readonly #system: LeaseTtls
  readonly #now: () => number
  readonly #concurrency: number
  readonly #ended: (lease: Lease) => void
  /** Leases held, by ID, and the same by storage key (what another daemon's notice names). */
  readonly #held = new Map<string, Held>()
  readonly #byKey = new Map<string, Held>()
  readonly #timers: TimerHeap
  /** How many revocations are running, and those waiting for a slot. */
  #running = 0
  #waiting: (() => void)[] = []
  /** Bumped at each seal: work begun before it must not touch what comes after. */
  #generation = 0
  /**
   * Whether this daemon revokes leases when they expire. Daemons sharing a store all issue,
   * renew and revoke leases; only the one that leads arms the expiry timers.
   */
  #leading = true
  /** Deletions made within one turn of the event loop, written as one batch. */
  #deletes: { key: string; done: (e?: unknown) => void }[] = []

  constructor(options: ExpirationOptions) {
    this.#barrier = options.barrier
    this.#log = options.log
    this.#owner = options.owner
    this.#system = {
      defaultTtl: options.system?.defaultTtl ?? SYSTEM_LEASE_TTL,
      maxTtl: options.system?.maxTtl ?? SYSTEM_LEASE_TTL,
    }
    this.#now = options.now ?? Date.now
    this.#concurrency = options.concurrency ?? 32
    this.#ended = options.ended ?? (() => {})
    this.#timers = new TimerHeap((ids) => this.#expired(ids), this.#now)
  }

  get size(): number {
    return this.#held.size
  }

  /** The TTL and max a lease of `entry` gets for `request`: backend, then mount, then system. */
  ttls(entry: MountEntry, request: Pick<LeaseRequest, 'ttl' | 'maxTtl'>): { ttl: number; max: number } {
    const systemMax = this.#system.maxTtl
    const mountMax = Math.min(entry.config.maxLeaseTtl || systemMax, systemMax)
    const max = request.maxTtl > 0 ? Math.min(request.maxTtl, mountMax) : mountMax
    const ttl = request.ttl || entry.config.defaultLeaseTtl || this.#system.defaultTtl
    return { ttl: Math.min(ttl, max), max }
  }

  /** Gives what `entry`'s backend handed out at `path` a lease, stored before it is returned. */
  async register(entry: MountEntry, path: string, request: LeaseRequest): Promise<Lease> {
    const generation = this.#generation
    const now = this.#now()
    const { ttl, max } = this.ttls(entry, request)
    const uuid = randomUuid()
    const held: Held = {
      lease: {
        id: `${entry.path}${path}/${uuid}`,
        path,
        issued: new Date(now),
        expires: new Date(now + ttl * 1000),
        maxExpires: new Date(now + max * 1000),
        renewable: request.renewable,
        data: request.data,
      },
      uuid: entry.uuid,
      key: leasePrefix(entry) + uuid,
      ttl,
    }
    await this.#save(held)
    if (generation !== this.#generation) throw sealed()
    this.#hold(held)
    return copy(held.lease)
  }

  /** Loads every stored lease (at unseal); those already expired are revoked at once. */
  async restore(): Promise<void> {
    const generation = this.#generation
    for (const dir of await this.#barrier.list(LEASES)) {
      const uuid = dir.slice(0, -1)
      if (!this.#owner(uuid)) {
        // Unmount deletes a mount's leases with its entry, so this is a store changed by hand.
        this.#log.error('the store holds leases of a mount that is not in the mount table; they are left as they are')
        continue
      }
      for (const name of await this.#barrier.list(LEASES + dir)) {
        const key = LEASES + dir + name
        const raw = await this.#barrier.get(key)
        if (!raw || generation !== this.#generation) continue
        const held = decode(raw, uuid, key)
        if (!held) {
          this.#log.error('a stored lease is malformed; it is left as it is')
          continue
        }
        this.#hold(held)
      }
    }
  }

  /** Whether this daemon revokes leases at expiry. */
  get leading(): boolean {
    return this.#leading
  }

  /**
   * Starts leading (takes up every lease the store holds, and arms its expiry: those expired
   * meanwhile are revoked at once) or stops (disarms every timer; the leases stay known).
   */
  async lead(leading: boolean): Promise<void> {
    if (leading === this.#leading) return
    this.#leading = leading
    if (!leading) return this.#timers.clear()
    await this.reload()
    if (!this.#leading) return
    for (const held of this.#held.values()) this.#arm(held)
  }

  /**
   * Takes up the leases the store holds now (another daemon sharing it issued, renewed or
   * revoked some): new ones are held, changed ones replaced, those gone from the store dropped.
   */
  async reload(): Promise<void> {
    const generation = this.#generation
    const stored = new Set<string>()
    for (const dir of await this.#barrier.list(LEASES))
      for (const name of await this.#barrier.list(LEASES + dir)) {
        stored.add(LEASES + dir + name)
        await this.reloadKey(LEASES + dir + name)
        if (generation !== this.#generation) return
      }
    for (const held of [...this.#held.values()]) if (!stored.has(held.key)) this.#drop(held)
  }

  /** Takes up the lease stored at `key` ('leases/MOUNT/ID') as it is now, or its deletion. */
  async reloadKey(key: string): Promise<void> {
    const generation = this.#generation
    const [, uuid, name, ...more] = key.split('/')
    if (!uuid || !name || more.length > 0) return
    const raw = await this.#barrier.get(key)
    if (generation !== this.#generation) return
    const current = this.#byKey.get(key)
    // Gone: revoked elsewhere, even if a revocation here (at expiry) is under way; it ends there.
    if (!raw) {
      if (current) this.#drop(current)
      return
    }
    const held = decode(raw, uuid, key)
    if (!held) return this.#log.error('a stored lease is malformed; it is left as it is')
    // A revocation under way here goes on; its lease is the one it revokes.
    if (current?.revoking) return
    this.#hold(held)
  }

  /** Drops every lease stored under `dir` ('leases/MOUNT/': its mount was unmounted elsewhere). */
  dropUnder(dir: string): void {
    for (const held of [...this.#held.values()]) if (held.key.startsWith(dir)) this.#drop(held)
  }

  /** Forgets every lease and stops every timer (at seal); the store keeps them. */
  stop(): void {
    this.#generation++
    this.#timers.clear()
    this.#held.clear()
    this.#byKey.clear()
    this.#running = 0
    // Waiters wake to find the generation changed, and give up.
    for (const wake of this.#waiting.splice(0)) wake()
    const deletes = this.#deletes
    this.#deletes = []
    for (const d of deletes) d.done(sealed())
  }

  lookup(id: string): Lease {
    const held = this.#held.get(id)
    if (!held) throw notFound('no lease with that ID')
    return copy(held.lease)
  }

  /** The leases of one mount. */
  leasesOf(entry: Pick<MountEntry, 'uuid'>): Lease[] {
    return [...this.#held.values()].filter((h) => h.uuid === entry.uuid).map((h) => copy(h.lease))
  }

  /**
   * The names directly under `prefix` ('' or ending in '/') in the tree of lease IDs: a lease's
   * last part as a file, anything longer as a directory ending in '/'. Sorted.
   */
  list(prefix: string): string[] {
    const names = new Set<string>()
    for (const id of this.#held.keys()) {
      if (!id.startsWith(prefix)) continue
      const rest = id.slice(prefix.length)
      const slash = rest.indexOf('/')
      names.add(slash < 0 ? rest : rest.slice(0, slash + 1))
    }
    return [...names].sort()
  }

  /** Whether `path` (no trailing '/') is a directory in the tree of lease IDs. */
  isDir(path: string): boolean {
    const prefix = path + '/'
    for (const id of this.#held.keys()) if (id.startsWith(prefix)) return true
    return false
  }

  /**
   * Extends a renewable lease by `increment` seconds from now (by its first TTL when not given),
   * never past its max; the backend may shorten it.
   */
  async renew(id: string, increment?: number): Promise<Lease> {
    const generation = this.#generation
    const held = this.#held.get(id)
    if (!held) throw notFound('no lease with that ID')
    if (!held.lease.renewable) throw invalid('this lease is not renewable')
    const now = this.#now()
    if (held.lease.expires.getTime() <= now) throw invalid('this lease has expired')
    if (increment !== undefined && (!Number.isInteger(increment) || increment < 0))
      throw invalid('the increment must be a whole number of seconds')
    let ttl = Math.min(increment || held.ttl, Math.max(0, Math.ceil((held.lease.maxExpires.getTime() - now) / 1000)))
    const backend = this.#owner(held.uuid)?.backend
    if (backend?.renew) ttl = Math.min(ttl, await backend.renew(copy(held.lease), ttl))
    if (generation !== this.#generation) throw sealed()
    const renewed: Held = {
      ...held,
      lease: {
        ...held.lease,
        expires: new Date(Math.min(now + ttl * 1000, held.lease.maxExpires.getTime())),
        lastRenewal: new Date(now),
      },
    }
    await this.#save(renewed)
    if (generation !== this.#generation) throw sealed()
    // A revocation that began meanwhile wins: the lease is gone, or going.
    if (this.#held.get(id) !== held || held.revoking) throw notFound('the lease was revoked meanwhile')
    this.#hold(renewed)
    return copy(renewed.lease)
  }

  /** Revokes the lease through its backend and deletes it; an unknown ID is not an error. */
  async revoke(id: string): Promise<void> {
    const held = this.#held.get(id)
    if (held) await this.#revoke(held)
  }

  /**
   * Revokes every lease whose ID lies under `prefix` (a path, with or without its trailing '/').
   * With `force`, the leases are deleted without asking their backends (for an account that is
   * gone). Returns how many were revoked; throws when any could not be (those stay).
   */
  async revokePrefix(prefix: string, options: { force?: boolean } = {}): Promise<number> {
    const dir = prefix === '' || prefix.endsWith('/') ? prefix : prefix + '/'
    const chosen = [...this.#held.values()].filter((h) => h.lease.id.startsWith(dir))
    return this.#revokeAll(chosen, options.force ?? false, 'under that prefix')
  }

  /** Revokes every lease of a mount (before an unmount or remount); throws `busy` at any failure. */
  async revokeMount(entry: Pick<MountEntry, 'uuid'>): Promise<void> {
    const chosen = [...this.#held.values()].filter((h) => h.uuid === entry.uuid)
    try {
      await this.#revokeAll(chosen, false, 'of the mount')
    } catch (e) {
      if (isKind(e, 'sealed')) throw e
      throw busy(`revoking a lease of the mount failed: ${messageOf(e)}`, { cause: e })
    }
  }

  // ---- internals ----

  #hold(held: Held): void {
    this.#held.set(held.lease.id, held)
    this.#byKey.set(held.key, held)
    this.#arm(held)
  }

  /** Forgets `held`, if it is the lease held under its ID; returns whether it was. */
  #unhold(held: Held): boolean {
    if (this.#held.get(held.lease.id) !== held) return false
    this.#held.delete(held.lease.id)
    if (this.#byKey.get(held.key) === held) this.#byKey.delete(held.key)
    this.#timers.cancel(held.lease.id)
    return true
  }

  #arm(held: Held): void {
    if (this.#leading) this.#timers.schedule(held.lease.id, held.lease.expires.getTime())
  }

  /** Forgets a lease that is gone from the store (another daemon revoked it). */
  #drop(held: Held): void {
    if (!this.#unhold(held)) return
    this.#owner(held.uuid)?.backend.leaseEnded?.(copy(held.lease))
    this.#ended(held.lease)
  }

  async #revokeAll(chosen: Held[], force: boolean, what: string): Promise<number> {
    if (force) {
      await Promise.all(chosen.map((h) => this.#forget(h)))
      if (chosen.length > 0) this.#log.warn(`${chosen.length} leases were dropped without revoking them (forced)`)
      return chosen.length
    }
    const results = await Promise.allSettled(chosen.map((h) => this.#slot(() => this.#revoke(h))))
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed.length > 0) {
      const first: unknown = failed[0]!.reason
      const kind = first instanceof SecretfsError ? first.kind : 'internal'
      throw new SecretfsError(
        kind,
        `${failed.length} of ${chosen.length} leases ${what} could not be revoked (they stay): ${messageOf(first)}`,
        { cause: first },
      )
    }
    return chosen.length
  }

  /** Revokes one lease now; a revocation already under way is joined, not repeated. */
  #revoke(held: Held): Promise<void> {
    if (held.revoking) return held.revoking
    const generation = this.#generation
    const run = (async () => {
      const owner = this.#owner(held.uuid)
      if (!owner) throw busy("the lease's mount is gone")
      try {
        await owner.backend.revoke?.(copy(held.lease))
      } catch (e) {
        if (generation === this.#generation) {
          held.lease.revokeError = messageOf(e)
          held.lease.revokeAttempts = (held.lease.revokeAttempts ?? 0) + 1
        }
        throw e
      }
      if (generation !== this.#generation) throw sealed()
      await this.#forget(held)
    })()
    held.revoking = run
    void run.catch(() => {}).finally(() => (held.revoking = undefined))
    return run
  }

  /** Deletes a lease from the store and from memory. */
  async #forget(held: Held): Promise<void> {
    await this.#delete(held.key)
    if (this.#unhold(held)) this.#ended(held.lease)
  }

  /** Expired leases: each is revoked in its turn, and retried with backoff when that fails. */
  #expired(ids: string[]): void {
    if (!this.#leading) return
    const generation = this.#generation
    for (const id of ids) {
      const held = this.#held.get(id)
      if (!held) continue
      void this.#slot(() => this.#revoke(held)).catch((e: unknown) => {
        if (generation !== this.#generation || this.#held.get(held.lease.id) !== held) return
        const attempts = held.lease.revokeAttempts ?? 1
        const wait = Math.min(FIRST_RETRY_MS * 2 ** (attempts - 1), LAST_RETRY_MS)
        this.#log.warn(
          `revoking an expired lease failed (attempt ${attempts}); retrying in ${Math.round(wait / 1000)}s: ${messageOf(e)}`,
        )
        if (this.#leading) this.#timers.schedule(held.lease.id, this.#now() + wait)
      })
    }
  }

  /** Runs `work` once fewer than the concurrency limit of revocations are running, in turn. */
  async #slot<T>(work: () => Promise<T>): Promise<T> {
    const generation = this.#generation
    if (this.#running >= this.#concurrency) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    if (generation !== this.#generation) throw sealed()
    this.#running++
    try {
      return await work()
    } finally {
      if (generation === this.#generation) {
        this.#running--
        this.#waiting.shift()?.()
      }
    }
  }

  async #save(held: Held): Promise<void> {
    const { lease } = held
    const stored: Stored = {
      v: 1,
      id: lease.id,
      path: lease.path,
      issued: lease.issued.getTime(),
      expires: lease.expires.getTime(),
      maxExpires: lease.maxExpires.getTime(),
      ttl: held.ttl,
      renewable: lease.renewable,
      ...(lease.lastRenewal && { lastRenewal: lease.lastRenewal.getTime() }),
      data: lease.data,
    }
    await this.#barrier.put(held.key, Buffer.from(JSON.stringify(stored)))
  }

  /** Deletes `key`, batched with the other deletions of this turn (a thousand expiring at once). */
  #delete(key: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#deletes.length === 0) setImmediate(() => void this.#flushDeletes())
      this.#deletes.push({ key, done: (e) => (e === undefined ? resolve() : reject(e)) })
    })
  }

  async #flushDeletes(): Promise<void> {
    const batch = this.#deletes
    this.#deletes = []
    if (batch.length === 0) return
    try {
      await this.#barrier.batch(batch.map((d) => ({ op: 'delete', path: d.key })))
      for (const d of batch) d.done()
    } catch (e) {
      for (const d of batch) d.done(e)
    }
  }
}

function decode(raw: Uint8Array, uuid: string, key: string): Held | undefined {
  try {
    const s = JSON.parse(Buffer.from(raw).toString('utf8')) as Stored
    if (s.v !== 1 || typeof s.id !== 'string') return undefined
    return {
      lease: {
        id: s.id,
        path: s.path,
        issued: new Date(s.issued),
        expires: new Date(s.expires),
        maxExpires: new Date(s.maxExpires),
        renewable: s.renewable,
        ...(s.lastRenewal !== undefined && { lastRenewal: new Date(s.lastRenewal) }),
        data: s.data,
      },
      uuid,
      key,
      ttl: s.ttl,
    }
  } catch {
    return undefined
  }
}

/** A copy a caller may keep or change without touching what is held. */
function copy(lease: Lease): Lease {
  return { ...lease, data: structuredClone(lease.data) }
}

/** An error's message for a lease's record and the log: our own messages only. */
function messageOf(e: unknown): string {
  return e instanceof SecretfsError ? e.message : 'the backend failed to revoke it'
}
