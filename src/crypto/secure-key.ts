// A key held in sodium secure memory (guarded pages, locked, never swapped), zeroed on dispose.

import sodium from 'sodium-native'

export class SecureKey {
  #buf: Buffer | undefined

  private constructor(buf: Buffer) {
    this.#buf = buf
  }

  static random(bytes = 32): SecureKey {
    const key = SecureKey.alloc(bytes)
    sodium.randombytes_buf(key.bytes)
    return key
  }

  /** Copies `source` into secure memory; the caller zeroes its own copy. */
  static from(source: Uint8Array): SecureKey {
    const key = SecureKey.alloc(source.length)
    key.bytes.set(source)
    return key
  }

  static alloc(bytes: number): SecureKey {
    return new SecureKey(sodium.sodium_malloc(bytes))
  }

  get bytes(): Buffer {
    if (!this.#buf) throw new Error('key used after dispose')
    return this.#buf
  }

  get disposed(): boolean {
    return this.#buf === undefined
  }

  dispose(): void {
    if (!this.#buf) return
    sodium.sodium_memzero(this.#buf)
    this.#buf = undefined
  }
}

/** Zeroes a buffer that held key material or a passphrase. */
export function wipe(buf: Uint8Array): void {
  sodium.sodium_memzero(buf)
}
