// Static roles: an existing database user whose password secretfs sets, and sets again every
// rotation_period, as Vault's static roles. The password is stored (encrypted) with the role, so
// that static-creds/NAME can give it; a write-ahead record marks a rotation under way, and one
// left at unseal is finished by rotating again, since only secretfs can set the password anyway.

import { busy, notFound, SecretfsError } from '../../errors.js'
import type { StorageView } from '../../barrier/barrier.js'
import { getJson, putJson, type JsonEntry } from '../framework/json-entry.js'
import { deleteWal, putWal } from '../framework/wal.js'
import { newPassword } from './dynamic-user.js'
import { DatabaseState } from './state.js'
import { DEFAULT_ROTATION, render } from './statements.js'

/** A static role as stored; the period in seconds, times in ms since the epoch. */
export interface StaticRole {
  db_name: string
  username: string
  rotation_period: number
  /** Empty: ALTER ROLE … WITH PASSWORD. */
  rotation_statements: string[]
  password: string
  last_vault_rotation: number
}

export type StaticRotationWal = { kind: 'static'; role: string }

/** Vault's shortest rotation period, in seconds. */
export const MIN_ROTATION_PERIOD = 5

/** After a failed rotation, the next try comes this many seconds later (or at the period, if shorter). */
const RETRY_SECONDS = 10

const MAX_TIMEOUT = 2 ** 31 - 1

const storageKey = (name: string) => `static-role/${name}`

const LOST_TWICE =
  "this daemon's lock on the static role was lost twice while its password was being set; rotate it again " +
  '(rotate-role/NAME)'

export async function readStaticRole(storage: StorageView, name: string): Promise<JsonEntry<StaticRole> | undefined> {
  return getJson<StaticRole>(storage, storageKey(name))
}

export async function staticRoleNames(storage: StorageView): Promise<string[]> {
  return (await storage.list('static-role/')).filter((n) => !n.endsWith('/'))
}

/** Seconds until the password of `role` next changes. */
export const secondsLeft = (role: StaticRole, now = Date.now()) =>
  Math.max(0, Math.ceil((role.last_vault_rotation + role.rotation_period * 1000 - now) / 1000))

/** How often the stored static roles are read again: one made by another daemon sharing the store is then scheduled here. */
const RESCAN_MS = 10_000

/**
 * The timers that rotate each static role's password when its period is up. They run between
 * start() and stop(): on the one daemon that leads, of those sharing a store.
 */
export class StaticRotations {
  readonly #state: DatabaseState
  readonly #timers = new Map<string, NodeJS.Timeout>()
  /** Why the last scheduled rotation of a role failed, until one succeeds. */
  readonly #errors = new Map<string, string>()
  #running = false
  #rescan: NodeJS.Timeout | undefined

  constructor(state: DatabaseState) {
    this.#state = state
  }

  /** Schedules every stored static role, and every one stored later. */
  async start(): Promise<void> {
    if (this.#running) return
    this.#running = true
    await this.#scan()
  }

  /** Cancels every timer (this daemon no longer leads); start() schedules them again. */
  stop(): void {
    this.#running = false
    clearTimeout(this.#rescan)
    for (const name of [...this.#timers.keys()]) this.#cancel(name)
  }

  async #scan(): Promise<void> {
    try {
      for (const name of await staticRoleNames(this.#state.storage)) {
        if (!this.#running) return
        if (this.#timers.has(name)) continue
        const entry = await readStaticRole(this.#state.storage, name)
        if (entry && !this.#timers.has(name)) this.#schedule(name, secondsLeft(entry.data) * 1000)
      }
    } finally {
      if (this.#running) {
        this.#rescan = setTimeout(() => void this.#scan().catch(() => {}), RESCAN_MS)
        this.#rescan.unref()
      }
    }
  }

  /**
   * Sets a new password for the static role `name` now and stores it. `role` is the role to store
   * when it is new (not stored yet); otherwise the stored one is rotated. Should this daemon's lock
   * on the role be lost after the database is given the password, and before it is stored (checked
   * with the store write), another daemon may have given it one after: which it has last is
   * unknown, so nothing is stored and the rotation is made once more, under a new lock.
   */
  async rotate(name: string, role?: StaticRole): Promise<StaticRole> {
    const first = await this.#rotate(name, role)
    if ('rotated' in first) return first.rotated
    const again = await this.#rotate(name, role)
    if (!('rotated' in again)) throw busy(LOST_TWICE)
    await deleteWal(this.#state.storage, first.lostAfter).catch(() => {})
    return again.rotated
  }

  /** One rotation; `lostAfter` (its write-ahead record, kept) if the lock went before it was stored. */
  #rotate(name: string, role?: StaticRole): Promise<{ rotated: StaticRole } | { lostAfter: string }> {
    return this.#state.serialize(`static-role/${name}`, async (held) => {
      const storage = this.#state.storage
      const old = role ? undefined : await readStaticRole(storage, name)
      const current = role ?? old?.data
      if (!current) throw notFound('no such static role')
      const db = await this.#state.database(current.db_name)
      const password = newPassword()
      const walId = await putWal(storage, { kind: 'static', role: name } satisfies StaticRotationWal)
      try {
        const sql = render(current.rotation_statements.length > 0 ? current.rotation_statements : DEFAULT_ROTATION, {
          name: current.username,
          password,
        })
        // Another daemon may rotate it once this one's lock is gone: the database is not touched then.
        await held()
        await db.transaction('running rotation_statements', sql, [password])
      } catch (e) {
        await deleteWal(storage, walId).catch(() => {})
        throw e
      }
      const rotated: StaticRole = { ...current, password, last_vault_rotation: Date.now() }
      const stored = putJson(storage, storageKey(name), rotated, old?.created, held)
      if (!(await DatabaseState.stored(stored))) return { lostAfter: walId }
      await deleteWal(storage, walId)
      this.#errors.delete(name)
      this.#schedule(name, rotated.rotation_period * 1000)
      return { rotated }
    })
  }

  /** Stores `change` of the stored static role `name` (its password kept), and reschedules it. */
  async update(name: string, change: (role: StaticRole) => StaticRole): Promise<void> {
    await this.#state.serialize(`static-role/${name}`, async () => {
      const old = await readStaticRole(this.#state.storage, name)
      if (!old) throw notFound('no such static role')
      const role = change(old.data)
      await putJson(this.#state.storage, storageKey(name), role, old.created)
      this.#schedule(name, secondsLeft(role) * 1000)
    })
  }

  /** Deletes the static role `name` (its user keeps the password it has) and its schedule. */
  async remove(name: string): Promise<void> {
    await this.#state.serialize(`static-role/${name}`, async () => {
      if (!(await readStaticRole(this.#state.storage, name))) throw notFound('no such static role')
      this.#cancel(name)
      await this.#state.storage.delete(storageKey(name))
    })
  }

  /** Why the last scheduled rotation of `name` failed, if it did and none has succeeded since. */
  lastError(name: string): string | undefined {
    return this.#errors.get(name)
  }

  close(): void {
    this.stop()
  }

  #cancel(name: string): void {
    clearTimeout(this.#timers.get(name))
    this.#timers.delete(name)
    this.#errors.delete(name)
  }

  #schedule(name: string, delayMs: number): void {
    clearTimeout(this.#timers.get(name))
    if (!this.#running) return
    const timer = setTimeout(() => void this.#due(name, delayMs), Math.min(Math.max(0, delayMs), MAX_TIMEOUT))
    timer.unref()
    this.#timers.set(name, timer)
  }

  async #due(name: string, delayMs: number): Promise<void> {
    this.#timers.delete(name)
    if (delayMs > MAX_TIMEOUT) return this.#schedule(name, delayMs - MAX_TIMEOUT)
    const entry = await readStaticRole(this.#state.storage, name).catch(() => undefined)
    if (!entry || !this.#running) return
    // A rotation that came meanwhile (rotate-role/NAME) moved the time.
    const left = secondsLeft(entry.data)
    if (left > 0) return this.#schedule(name, left * 1000)
    await this.rotate(name).catch((e: unknown) => {
      this.#errors.set(name, e instanceof SecretfsError ? e.message : 'an internal error')
      if (this.#running) this.#schedule(name, Math.min(RETRY_SECONDS, entry.data.rotation_period) * 1000)
    })
  }
}
