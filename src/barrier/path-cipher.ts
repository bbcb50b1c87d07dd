// Encrypts each component of a logical path, so the raw store shows no mount path and no secret
// name while a directory can still be listed by key prefix (as gocryptfs does for file names).
// A name is padded to 16 bytes (ISO/IEC 7816-4) and sealed with XChaCha20-Poly1305 under the
// name key, its parent's logical path as associated data, and a nonce derived from a keyed
// BLAKE2b hash of parent and name: deterministic, so a path always maps to the same key, and the
// same name in two directories looks unrelated. What stays visible is the tree's shape: depth,
// entry counts and name lengths rounded up to 16 bytes.

import sodium from 'sodium-native'
import { integrity } from '../errors.js'
import { SecureKey } from '../crypto/secure-key.js'

const NONCE = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
const BLOCK = 16
const CONTEXT = Buffer.from('sfs-path') // crypto_kdf context, 8 bytes
const CACHE_LIMIT = 16384

export class PathCipher {
  readonly #nonceKey = SecureKey.alloc(32)
  readonly #nameKey = SecureKey.alloc(32)
  readonly #lockKey = SecureKey.alloc(32)
  /** Encodings by logical path (directories end in '/'); hot paths skip the crypto. */
  readonly #cache = new Map<string, string>()

  constructor(pathKey: Buffer) {
    sodium.crypto_kdf_derive_from_key(this.#nonceKey.bytes, 1, CONTEXT, pathKey)
    sodium.crypto_kdf_derive_from_key(this.#nameKey.bytes, 2, CONTEXT, pathKey)
    sodium.crypto_kdf_derive_from_key(this.#lockKey.bytes, 3, CONTEXT, pathKey)
  }

  /**
   * The id of the lock that guards a logical path among the processes sharing a store: an int32
   * from a keyed hash, so that the id says nothing of the path. Two paths may share one (they are
   * then changed one after the other).
   */
  lockId(path: string): number {
    const hash = Buffer.alloc(16)
    sodium.crypto_generichash_batch(hash, [Buffer.from(path, 'utf8')], this.#lockKey.bytes)
    return hash.readInt32BE(0)
  }

  /** Encodes one name within the logical directory `parent` ('' for the root). */
  encodeName(parent: string, name: string): string {
    const raw = Buffer.from(name, 'utf8')
    const padded = Buffer.alloc((Math.floor(raw.length / BLOCK) + 1) * BLOCK)
    raw.copy(padded)
    const len = sodium.sodium_pad(padded, raw.length, BLOCK)
    const ad = Buffer.from(parent, 'utf8')
    const out = Buffer.allocUnsafe(NONCE + len + sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES)
    const nonce = out.subarray(0, NONCE)
    sodium.crypto_generichash_batch(nonce, [ad, Buffer.of(0), padded.subarray(0, len)], this.#nonceKey.bytes)
    sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
      out.subarray(NONCE),
      padded.subarray(0, len),
      ad,
      null,
      nonce,
      this.#nameKey.bytes,
    )
    return out.toString('base64url')
  }

  decodeName(parent: string, encoded: string): string {
    const sealed = Buffer.from(encoded, 'base64url')
    const abytes = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES
    if (sealed.length < NONCE + abytes + BLOCK) throw integrity()
    const padded = Buffer.allocUnsafe(sealed.length - NONCE - abytes)
    try {
      sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        padded,
        null,
        sealed.subarray(NONCE),
        Buffer.from(parent, 'utf8'),
        sealed.subarray(0, NONCE),
        this.#nameKey.bytes,
      )
      return padded.subarray(0, sodium.sodium_unpad(padded, padded.length, BLOCK)).toString('utf8')
    } catch {
      throw integrity()
    }
  }

  /** The logical path of an encoded key ('x/y' → 'a/b'), or of an encoded directory ('x/' → 'a/'). */
  decodePath(encoded: string): string {
    if (encoded === '') return ''
    const dir = encoded.endsWith('/')
    let path = ''
    for (const part of (dir ? encoded.slice(0, -1) : encoded).split('/')) path += this.decodeName(path, part) + '/'
    return dir ? path : path.slice(0, -1)
  }

  /** The encoded form of a logical directory path ('' or 'a/b/'), ending in '/' unless root. */
  encodeDir(dir: string): string {
    return dir === '' ? '' : this.#encode(dir.slice(0, -1)) + '/'
  }

  /** The encoded form of a logical key such as 'a/b/c'. */
  encodeKey(key: string): string {
    return this.#encode(key)
  }

  #encode(path: string): string {
    const cached = this.#cache.get(path)
    if (cached !== undefined) return cached
    const slash = path.lastIndexOf('/')
    const parent = slash < 0 ? '' : path.slice(0, slash + 1)
    const encoded = this.encodeDir(parent) + this.encodeName(parent, path.slice(slash + 1))
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear()
    this.#cache.set(path, encoded)
    return encoded
  }

  dispose(): void {
    this.#nonceKey.dispose()
    this.#nameKey.dispose()
    this.#lockKey.dispose()
    this.#cache.clear()
  }
}
