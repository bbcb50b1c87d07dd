// The part of sodium-native that secretfs uses (the package ships no types).
declare module 'sodium-native' {
  type Buf = Buffer | Uint8Array
  const sodium: {
    sodium_malloc(size: number): Buffer
    sodium_memzero(buf: Buf): void
    sodium_pad(buf: Buf, unpaddedLength: number, blockSize: number): number
    sodium_unpad(buf: Buf, paddedLength: number, blockSize: number): number
    /** Compares in constant time; true when equal. */
    sodium_memcmp(a: Buf, b: Buf): boolean
    randombytes_buf(buf: Buf): void
    crypto_generichash_batch(out: Buf, inputs: Buf[], key?: Buf): void
    crypto_kdf_derive_from_key(subkey: Buf, subkeyId: number, ctx: Buf, key: Buf): void
    crypto_aead_xchacha20poly1305_ietf_encrypt(
      ciphertext: Buf,
      message: Buf,
      ad: Buf | null,
      nsec: null,
      npub: Buf,
      key: Buf,
    ): number
    crypto_aead_xchacha20poly1305_ietf_decrypt(
      message: Buf,
      nsec: null,
      ciphertext: Buf,
      ad: Buf | null,
      npub: Buf,
      key: Buf,
    ): number
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES: number
    crypto_aead_xchacha20poly1305_ietf_ABYTES: number
    crypto_pwhash_async(
      out: Buf,
      passwd: Buf,
      salt: Buf,
      opslimit: number,
      memlimit: number,
      alg: number,
      cb: (err: Error | null) => void,
    ): void
    crypto_pwhash_SALTBYTES: number
    crypto_pwhash_ALG_ARGON2ID13: number
    crypto_pwhash_OPSLIMIT_MODERATE: number
    crypto_pwhash_MEMLIMIT_MODERATE: number
    crypto_pwhash_OPSLIMIT_INTERACTIVE: number
    crypto_pwhash_MEMLIMIT_INTERACTIVE: number
    crypto_pwhash_OPSLIMIT_SENSITIVE: number
    crypto_pwhash_MEMLIMIT_SENSITIVE: number
  }
  export default sodium
}
