// XChaCha20-Poly1305 with a fresh random nonce: nonce || ciphertext || tag.

import sodium from 'sodium-native'
import { integrity } from '../errors.js'

const NONCE = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
const TAG = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES
export const AEAD_OVERHEAD = NONCE + TAG

/** Writes nonce || ciphertext into `out` (length plaintext + AEAD_OVERHEAD). */
export function sealInto(out: Buffer, key: Buffer, plaintext: Uint8Array, ad: Uint8Array): void {
  const nonce = out.subarray(0, NONCE)
  sodium.randombytes_buf(nonce)
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out.subarray(NONCE), plaintext, ad, null, nonce, key)
}

export function seal(key: Buffer, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + AEAD_OVERHEAD)
  sealInto(out, key, plaintext, ad)
  return out
}

/**
 * Decrypts nonce || ciphertext into `out` (length sealed - AEAD_OVERHEAD), or into a new buffer.
 * Throws an integrity error when authentication fails.
 */
export function open(key: Buffer, sealed: Uint8Array, ad: Uint8Array, out?: Buffer): Buffer {
  if (sealed.length < AEAD_OVERHEAD) throw integrity()
  const target = out ?? Buffer.allocUnsafe(sealed.length - AEAD_OVERHEAD)
  const nonce = sealed.subarray(0, NONCE)
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(target, null, sealed.subarray(NONCE), ad, nonce, key)
  } catch {
    throw integrity()
  }
  return target
}
