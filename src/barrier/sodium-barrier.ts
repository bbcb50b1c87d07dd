// The barrier, built on libsodium. Entries are sealed with XChaCha20-Poly1305 under the keyring's
// active term: version u8 | term u32 | nonce | ciphertext+tag, with the header and the entry's
// logical path as associated data, so an entry altered, moved onto another key or swapped with
// another fails authentication. Names are encrypted by the path cipher. The keyring is sealed by
// the root key, which is wrapped by a key-encryption key (seal-config.ts).

import { exists, integrity, internal, invalid, sealed as sealedError } from '../errors.js'
import { AEAD_OVERHEAD, open, seal, sealInto } from '../crypto/aead.js'
import { SecureKey } from '../crypto/secure-key.js'
import type { LockHeld, Storage, StorageChange, StorageOp } from '../storage/storage.js'
import type { Barrier, BarrierChange, BarrierOp, Probe } from './barrier.js'
import { Keyring, type TermInfo } from './keyring.js'
import { PathCipher } from './path-cipher.js'
import { createSealConfig, openSealConfig, parseSealConfig, type Unlock } from './seal-config.js'

const CONFIG_KEY = 'seal/config'
const KEYRING_KEY = 'seal/keyring'
const DATA = 'data/'
const KEYRING_AD = Buffer.from('secretfs/keyring/v1')
const VERSION = 1
const HEADER = 5
/**
 * An entry written under each new term as it becomes active, so that the store always holds an
 * entry of its newest term: a keyring put back from before a rotation is then always caught.
 */
const TERM_MARKER = 'core/keyring-term'
/**
 * After a change of another process's that could not be taken up, the whole store is, this much
 * later; the wait doubles while it keeps failing, up to FOLLOW_RETRY_MAX_MS.
 */
export const FOLLOW_RETRY_MS = 1_000
const FOLLOW_RETRY_MAX_MS = 30_000

interface Unsealed {
  rootKey: SecureKey
  /** Replaced when another process sharing the store rotates it. */
  keyring: Keyring
  paths: PathCipher
}

function checkKey(path: string): void {
  if (path === '' || path.startsWith('/') || path.endsWith('/') || path.includes('//'))
    throw internal('malformed logical path')
}

function checkDir(prefix: string): void {
  if (prefix !== '' && (!prefix.endsWith('/') || prefix.startsWith('/') || prefix.includes('//')))
    throw internal('malformed logical prefix')
}

export class SodiumBarrier implements Barrier {
  readonly #storage: Storage
  #state: Unsealed | undefined

  constructor(storage: Storage) {
    this.#storage = storage
  }

  get sealed(): boolean {
    return this.#state === undefined
  }

  async initialized(): Promise<boolean> {
    return (await this.#storage.get(CONFIG_KEY)) !== undefined
  }

  /** Creates the root key and keyring of a new store. The barrier stays sealed. */
  async initialize(unlock: Unlock): Promise<void> {
    if (await this.initialized()) throw exists('this store is already initialised')
    const rootKey = SecureKey.random(32)
    const keyring = Keyring.create()
    try {
      const config = await createSealConfig(unlock, rootKey)
      await this.#storage.batch([
        { op: 'put', key: CONFIG_KEY, value: Buffer.from(JSON.stringify(config)) },
        { op: 'put', key: KEYRING_KEY, value: sealKeyring(rootKey, keyring) },
      ])
    } finally {
      rootKey.dispose()
      keyring.dispose()
    }
  }

  async unseal(unlock: Unlock): Promise<void> {
    if (this.#state) return
    const raw = await this.#storage.get(CONFIG_KEY)
    if (!raw) throw invalid('this store is not initialised')
    const rootKey = await openSealConfig(parseSealConfig(raw), unlock)
    try {
      const sealedRing = await this.#storage.get(KEYRING_KEY)
      if (!sealedRing || sealedRing.length < AEAD_OVERHEAD) throw integrity('the keyring is missing or damaged')
      const plain = SecureKey.alloc(sealedRing.length - AEAD_OVERHEAD)
      let keyring: Keyring
      try {
        open(rootKey.bytes, sealedRing, KEYRING_AD, plain.bytes)
        keyring = Keyring.parse(plain.bytes)
      } finally {
        plain.dispose()
      }
      try {
        await this.#checkNotRolledBack(keyring)
      } catch (e) {
        keyring.dispose()
        throw e
      }
      if (this.#state) {
        keyring.dispose()
        throw internal('unsealed twice at once')
      }
      this.#state = { rootKey, keyring, paths: new PathCipher(keyring.pathKey.bytes) }
    } catch (e) {
      rootKey.dispose()
      throw e
    }
  }

  /** Drops and zeroes every key. */
  seal(): void {
    const state = this.#state
    this.#state = undefined
    if (!state) return
    state.paths.dispose()
    state.keyring.dispose()
    state.rootKey.dispose()
  }

  /** Adds a keyring term; new writes use it. Returns the new term. */
  async rotate(): Promise<number> {
    const { keyring, rootKey } = this.#unsealed()
    const term = keyring.rotate()
    try {
      const marker = Buffer.alloc(4)
      marker.writeUInt32BE(term)
      const [sealedMarker] = this.#physical([{ op: 'put', path: TERM_MARKER, value: marker }])
      await this.#storage.batch([{ op: 'put', key: KEYRING_KEY, value: sealKeyring(rootKey, keyring) }, sealedMarker!])
    } catch (e) {
      keyring.undoRotate(term)
      throw e
    }
    return term
  }

  keyStatus(): { term: number; terms: TermInfo[] } {
    const { keyring } = this.#unsealed()
    return { term: keyring.activeTerm, terms: keyring.terms() }
  }

  async get(path: string): Promise<Uint8Array | undefined> {
    checkKey(path)
    const stored = await this.#storage.get(DATA + this.#unsealed().paths.encodeKey(path))
    return stored && this.#open(path, stored)
  }

  async probe(path: string): Promise<Probe> {
    checkKey(path)
    const key = DATA + this.#unsealed().paths.encodeKey(path)
    // A directory's children are listed under its encoded path and '/' (list, encodeDir).
    const { value, beneath } = await this.#storage.probe(key, key + '/')
    return { value: value && (await this.#open(path, value)), dir: beneath }
  }

  /** The plaintext of `stored`, the entry at `path`. */
  async #open(path: string, stored: Uint8Array): Promise<Uint8Array> {
    if (stored.length < HEADER + AEAD_OVERHEAD || stored[0] !== VERSION) throw integrity()
    const header = Buffer.from(stored.buffer, stored.byteOffset, HEADER)
    const term = header.readUInt32BE(1)
    let keyring = this.#unsealed().keyring
    // Another daemon on a shared store rotated the keyring, and its notice has not come yet.
    if (term > keyring.activeTerm && this.#storage.watch) {
      await this.#reloadKeyring()
      keyring = this.#unsealed().keyring
    }
    const key = keyring.key(term)
    if (!key)
      throw integrity(
        term > keyring.activeTerm
          ? 'integrity check failed: the entry is of a key term newer than the keyring (rolled back?)'
          : undefined,
      )
    return open(key, stored.subarray(HEADER), associatedData(header, path))
  }

  put(path: string, value: Uint8Array): Promise<void> {
    return this.batch([{ op: 'put', path, value }])
  }

  delete(path: string): Promise<void> {
    return this.batch([{ op: 'delete', path }])
  }

  async list(prefix: string, limit?: number): Promise<string[]> {
    checkDir(prefix)
    const { paths } = this.#unsealed()
    const children = await this.#storage.list(DATA + paths.encodeDir(prefix), limit)
    return children
      .map((c) => (c.endsWith('/') ? paths.decodeName(prefix, c.slice(0, -1)) + '/' : paths.decodeName(prefix, c)))
      .sort()
  }

  async batch(ops: BarrierOp[], whileHeld?: LockHeld): Promise<void> {
    await this.#storage.batch(this.#physical(ops), whileHeld)
  }

  locked<T>(path: string, fn: (held: LockHeld) => Promise<T>): Promise<T> {
    checkKey(path)
    if (!this.#storage.locked) return fn(async () => {})
    return this.#storage.locked(this.#unsealed().paths.lockId(path), fn)
  }

  /** The storage ops for `ops`: names encoded, values sealed under the active term. */
  #physical(ops: BarrierOp[]): StorageOp[] {
    const { paths, keyring } = this.#unsealed()
    return ops.map((op): StorageOp => {
      if (op.op === 'delete-prefix') {
        checkDir(op.prefix)
        return { op: 'delete-prefix', prefix: DATA + paths.encodeDir(op.prefix) }
      }
      checkKey(op.path)
      const key = DATA + paths.encodeKey(op.path)
      if (op.op === 'delete') return { op: 'delete', key }
      const term = keyring.activeTerm
      const out = Buffer.allocUnsafe(HEADER + op.value.length + AEAD_OVERHEAD)
      out.writeUInt8(VERSION, 0)
      out.writeUInt32BE(term, 1)
      sealInto(out.subarray(HEADER), keyring.key(term)!, op.value, associatedData(out.subarray(0, HEADER), op.path))
      return { op: 'put', key, value: out }
    })
  }

  /**
   * Follows the changes other processes make to a shared store: a keyring one of them rotated is
   * taken up here, and `listener` hears of every other change, as logical paths. A change that
   * cannot be taken up (the store unreachable a moment) goes to `failed`, and the whole store is
   * taken up again a moment later (FOLLOW_RETRY_MS), until that succeeds. `since`: the store's
   * count of changes before the caller loaded what it holds (Storage.changes). Undefined for a
   * store that no other process shares.
   */
  watch(
    listener: (change: BarrierChange) => void | Promise<void>,
    failed: (error: unknown) => void = () => {},
    since?: number,
  ): (() => void) | undefined {
    if (!this.#storage.watch) return undefined
    // One change at a time, in order: a keyring is taken up before what was written under it.
    let following = Promise.resolve()
    let stopped = false
    let retry: NodeJS.Timeout | undefined
    let delay = FOLLOW_RETRY_MS
    const follow = (change: StorageChange) => {
      following = following
        .then(async () => {
          if (stopped) return
          await this.#follow(change, listener)
          delay = FOLLOW_RETRY_MS
        })
        .catch((e: unknown) => {
          failed(e)
          if (stopped || retry) return
          retry = setTimeout(() => {
            retry = undefined
            follow({ all: true })
          }, delay)
          delay = Math.min(2 * delay, FOLLOW_RETRY_MAX_MS)
        })
    }
    const stop = this.#storage.watch(follow, since)
    return () => {
      stopped = true
      clearTimeout(retry)
      stop()
    }
  }

  async #follow(change: StorageChange, listener: (change: BarrierChange) => void | Promise<void>): Promise<void> {
    if (!this.#state) return
    if ('all' in change || change.keys.includes(KEYRING_KEY)) await this.#reloadKeyring()
    const state = this.#state
    if (!state) return
    if ('all' in change) return await listener({ all: true })
    // Names that do not decode (not entries of this barrier, or damaged) are no change to follow.
    const logical = (keys: string[]) =>
      keys.flatMap((k) => {
        if (!k.startsWith(DATA)) return []
        try {
          return [state.paths.decodePath(k.slice(DATA.length))]
        } catch {
          return []
        }
      })
    const paths = logical(change.keys)
    const dirs = logical(change.prefixes)
    if (paths.length > 0 || dirs.length > 0) await listener({ paths, dirs })
  }

  /** Takes up the stored keyring if another process rotated it (its newest term is newer). */
  async #reloadKeyring(): Promise<void> {
    const state = this.#state
    if (!state) return
    const sealedRing = await this.#storage.get(KEYRING_KEY)
    if (!sealedRing || sealedRing.length < AEAD_OVERHEAD || this.#state !== state) return
    const plain = SecureKey.alloc(sealedRing.length - AEAD_OVERHEAD)
    let keyring: Keyring
    try {
      open(state.rootKey.bytes, sealedRing, KEYRING_AD, plain.bytes)
      keyring = Keyring.parse(plain.bytes)
    } finally {
      plain.dispose()
    }
    if (this.#state !== state || keyring.activeTerm <= state.keyring.activeTerm) return keyring.dispose()
    const old = state.keyring
    state.keyring = keyring
    old.dispose()
  }

  /**
   * Refuses a keyring older than the entries: one put back from before a rotation would have new
   * writes sealed under a retired key. Every entry's header names its term in the clear, so the
   * newest term in use is one query away (see TERM_MARKER for why there always is one).
   */
  async #checkNotRolledBack(keyring: Keyring): Promise<void> {
    const newest = await this.#storage.maxValueSlice(DATA, 1, 4)
    if (!newest || newest.length < 4) return
    const term = Buffer.from(newest.buffer, newest.byteOffset, 4).readUInt32BE(0)
    if (term > keyring.activeTerm)
      throw integrity(
        `the keyring was rolled back: the store holds entries of key term ${term}, newer than the keyring's newest term ${keyring.activeTerm}; refusing to unseal, so that nothing is written under a retired key`,
      )
  }

  #unsealed(): Unsealed {
    if (!this.#state) throw sealedError()
    return this.#state
  }
}

function associatedData(header: Buffer, path: string): Buffer {
  return Buffer.concat([header, Buffer.from(path, 'utf8')])
}

function sealKeyring(rootKey: SecureKey, keyring: Keyring): Buffer {
  const plain = keyring.serialize()
  try {
    return seal(rootKey.bytes, plain.bytes, KEYRING_AD)
  } finally {
    plain.dispose()
  }
}
