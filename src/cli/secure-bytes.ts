// Secrets on their way in (a typed passphrase, a key or passphrase file, the unseal request) held
// in sodium secure memory (locked, guarded, never swapped) rather than in JS strings or arrays, and
// zeroed once used.

import sodium from 'sodium-native'
import { wipe } from '../crypto/secure-key.js'

export { wipe }

/** `size` bytes of secure memory. */
export function secureAlloc(size: number): Buffer {
  return sodium.sodium_malloc(size)
}

/** Bytes gathered piece by piece in secure memory; outgrown buffers are zeroed, not left behind. */
export class SecureBytes {
  #buf: Buffer
  #length = 0

  constructor(capacity = 256) {
    this.#buf = secureAlloc(capacity)
  }

  get length(): number {
    return this.#length
  }

  at(index: number): number {
    return this.#buf[index]!
  }

  push(byte: number): void {
    this.#reserve(1)
    this.#buf[this.#length++] = byte
  }

  append(bytes: Uint8Array): void {
    this.#reserve(bytes.length)
    this.#buf.set(bytes, this.#length)
    this.#length += bytes.length
  }

  /** Keeps the first `length` bytes; the rest are zeroed. */
  truncate(length: number): void {
    wipe(this.#buf.subarray(length, this.#length))
    this.#length = Math.min(length, this.#length)
  }

  /** The bytes, in secure memory of their exact size; these are zeroed. */
  take(): Buffer {
    const out = secureAlloc(this.#length)
    this.#buf.copy(out, 0, 0, this.#length)
    this.wipe()
    return out
  }

  wipe(): void {
    wipe(this.#buf)
    this.#length = 0
  }

  #reserve(more: number): void {
    if (this.#length + more <= this.#buf.length) return
    const bigger = secureAlloc(Math.max(this.#buf.length * 2, this.#length + more))
    this.#buf.copy(bigger, 0, 0, this.#length)
    wipe(this.#buf)
    this.#buf = bigger
  }
}
