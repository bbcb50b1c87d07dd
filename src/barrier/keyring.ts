// The keyring: one data-encryption key per term, plus the key that encrypts names. Rotation adds
// a term; new writes use the newest, and every older term still decrypts. The keyring is stored
// sealed by the root key, and its plaintext only ever exists in secure memory.

import { integrity } from '../errors.js'
import { SecureKey } from '../crypto/secure-key.js'

const KEY = 32
const FORMAT = 1
// format u8 | active term u32 | count u32 | path key | count × (term u32 | created ms f64 | key)
const HEADER = 1 + 4 + 4 + KEY
const TERM = 4 + 8 + KEY

export interface TermInfo {
  term: number
  created: Date
}

export class Keyring {
  readonly #terms = new Map<number, { key: SecureKey; created: Date }>()
  #active = 0
  readonly pathKey: SecureKey

  private constructor(pathKey: SecureKey) {
    this.pathKey = pathKey
  }

  static create(): Keyring {
    const ring = new Keyring(SecureKey.random(KEY))
    ring.rotate()
    return ring
  }

  get activeTerm(): number {
    return this.#active
  }

  /** The key for `term`, or undefined when this keyring never had that term. */
  key(term: number): Buffer | undefined {
    return this.#terms.get(term)?.key.bytes
  }

  terms(): TermInfo[] {
    return [...this.#terms].map(([term, t]) => ({ term, created: t.created }))
  }

  /** Adds a new term with a fresh random key and makes it active. */
  rotate(): number {
    const term = this.#active + 1
    this.#terms.set(term, { key: SecureKey.random(KEY), created: new Date() })
    this.#active = term
    return term
  }

  /** Takes back a rotation that could not be stored. */
  undoRotate(term: number): void {
    if (term !== this.#active) return
    this.#terms.get(term)?.key.dispose()
    this.#terms.delete(term)
    this.#active = Math.max(...this.#terms.keys())
  }

  /** The serialised keyring in secure memory; the caller disposes it. */
  serialize(): SecureKey {
    const out = SecureKey.alloc(HEADER + TERM * this.#terms.size)
    const buf = out.bytes
    buf.writeUInt8(FORMAT, 0)
    buf.writeUInt32BE(this.#active, 1)
    buf.writeUInt32BE(this.#terms.size, 5)
    buf.set(this.pathKey.bytes, 9)
    let at = HEADER
    for (const [term, t] of this.#terms) {
      buf.writeUInt32BE(term, at)
      buf.writeDoubleBE(t.created.getTime(), at + 4)
      buf.set(t.key.bytes, at + 12)
      at += TERM
    }
    return out
  }

  static parse(buf: Buffer): Keyring {
    if (buf.length < HEADER || buf.readUInt8(0) !== FORMAT) throw integrity('the keyring is malformed')
    const count = buf.readUInt32BE(5)
    if (buf.length !== HEADER + TERM * count) throw integrity('the keyring is malformed')
    const ring = new Keyring(SecureKey.from(buf.subarray(9, HEADER)))
    for (let i = 0, at = HEADER; i < count; i++, at += TERM) {
      ring.#terms.set(buf.readUInt32BE(at), {
        created: new Date(buf.readDoubleBE(at + 4)),
        key: SecureKey.from(buf.subarray(at + 12, at + TERM)),
      })
    }
    ring.#active = buf.readUInt32BE(1)
    if (!ring.#terms.has(ring.#active)) throw integrity('the keyring is malformed')
    return ring
  }

  dispose(): void {
    for (const t of this.#terms.values()) t.key.dispose()
    this.#terms.clear()
    this.pathKey.dispose()
  }
}
