// The seal configuration, the one entry stored in plain text: how to derive the key-encryption
// key (Argon2id parameters and salt, or "a 32-byte key file") and the root key wrapped by it.
// Nothing in it is secret. A wrong passphrase or key fails to unwrap and changes nothing.

import sodium from 'sodium-native'
import { invalid, integrity, unsealFailed } from '../errors.js'
import { AEAD_OVERHEAD, open, seal } from '../crypto/aead.js'
import { SecureKey } from '../crypto/secure-key.js'

export const KEY_BYTES = 32
const ROOT_KEY_AD = Buffer.from('secretfs/root-key/v1')

/** What unlocks a store: a passphrase, or the contents of a 32-byte key file. */
export type Unlock = { kind: 'passphrase'; passphrase: Uint8Array } | { kind: 'key-file'; key: Uint8Array }

interface Argon2idParams {
  algorithm: 'argon2id13'
  salt: string
  opslimit: number
  memlimit: number
}

export interface SealConfig {
  version: 1
  unlock: Unlock['kind']
  kdf?: Argon2idParams
  /** nonce || XChaCha20-Poly1305(root key), base64 */
  rootKey: string
}

const MODERATE = {
  opslimit: sodium.crypto_pwhash_OPSLIMIT_MODERATE,
  memlimit: sodium.crypto_pwhash_MEMLIMIT_MODERATE,
}

/**
 * The limits a store may name: libsodium's INTERACTIVE to SENSITIVE. New stores use MODERATE; the
 * range only keeps an edited configuration from crashing the KDF (below its minimum) or hanging
 * and exhausting memory (a limit of terabytes) before the passphrase is even tried.
 */
const BOUNDS = {
  opslimit: [sodium.crypto_pwhash_OPSLIMIT_INTERACTIVE, sodium.crypto_pwhash_OPSLIMIT_SENSITIVE],
  memlimit: [sodium.crypto_pwhash_MEMLIMIT_INTERACTIVE, sodium.crypto_pwhash_MEMLIMIT_SENSITIVE],
} as const

function checkKdf(kdf: unknown): asserts kdf is Argon2idParams {
  const k = kdf as Partial<Argon2idParams> | undefined
  if (typeof k !== 'object' || k === null || k.algorithm !== 'argon2id13')
    throw integrity('the seal configuration is malformed: its key derivation is not Argon2id')
  if (typeof k.salt !== 'string' || Buffer.from(k.salt, 'base64').length !== sodium.crypto_pwhash_SALTBYTES)
    throw integrity('the seal configuration is malformed: its Argon2id salt is not 16 bytes')
  for (const name of ['opslimit', 'memlimit'] as const) {
    const v = k[name]
    const [min, max] = BOUNDS[name]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw integrity(
        `the seal configuration is malformed: its Argon2id ${name} is outside the range secretfs accepts (${min} to ${max})`,
      )
  }
}

async function deriveKek(unlock: Unlock, kdf: Argon2idParams | undefined): Promise<SecureKey> {
  if (unlock.kind === 'key-file') {
    if (unlock.key.length !== KEY_BYTES) throw invalid(`a key file must hold exactly ${KEY_BYTES} bytes`)
    return SecureKey.from(unlock.key)
  }
  checkKdf(kdf)
  if (unlock.passphrase.length === 0) throw invalid('the passphrase is empty')
  const kek = SecureKey.alloc(KEY_BYTES)
  await new Promise<void>((resolve, reject) =>
    sodium.crypto_pwhash_async(
      kek.bytes,
      Buffer.from(unlock.passphrase.buffer, unlock.passphrase.byteOffset, unlock.passphrase.length),
      Buffer.from(kdf.salt, 'base64'),
      kdf.opslimit,
      kdf.memlimit,
      sodium.crypto_pwhash_ALG_ARGON2ID13,
      (err) => (err ? reject(err) : resolve()),
    ),
  )
  return kek
}

/** Wraps `rootKey` under a key-encryption key derived from `unlock`. */
export async function createSealConfig(unlock: Unlock, rootKey: SecureKey): Promise<SealConfig> {
  let kdf: Argon2idParams | undefined
  if (unlock.kind === 'passphrase') {
    const salt = Buffer.alloc(sodium.crypto_pwhash_SALTBYTES)
    sodium.randombytes_buf(salt)
    kdf = { algorithm: 'argon2id13', salt: salt.toString('base64'), ...MODERATE }
  }
  const kek = await deriveKek(unlock, kdf)
  try {
    const wrapped = seal(kek.bytes, rootKey.bytes, ROOT_KEY_AD).toString('base64')
    return { version: 1, unlock: unlock.kind, ...(kdf && { kdf }), rootKey: wrapped }
  } finally {
    kek.dispose()
  }
}

/** Unwraps the root key, or throws `unseal-failed` for a wrong passphrase or key. */
export async function openSealConfig(config: SealConfig, unlock: Unlock): Promise<SecureKey> {
  if (config.unlock !== unlock.kind)
    throw unsealFailed(
      config.unlock === 'passphrase'
        ? 'this store is unlocked with a passphrase, not a key file'
        : 'this store is unlocked with a key file, not a passphrase',
    )
  const wrapped = Buffer.from(config.rootKey, 'base64')
  if (wrapped.length !== KEY_BYTES + AEAD_OVERHEAD) throw integrity('the seal configuration is malformed')
  const kek = await deriveKek(unlock, config.kdf)
  const rootKey = SecureKey.alloc(KEY_BYTES)
  try {
    open(kek.bytes, wrapped, ROOT_KEY_AD, rootKey.bytes)
    return rootKey
  } catch {
    rootKey.dispose()
    throw unsealFailed(
      unlock.kind === 'passphrase'
        ? 'wrong passphrase: it does not unlock this store'
        : 'wrong key file: it does not unlock this store',
    )
  } finally {
    kek.dispose()
  }
}

export function parseSealConfig(bytes: Uint8Array): SealConfig {
  let config: SealConfig
  try {
    config = JSON.parse(Buffer.from(bytes).toString('utf8')) as SealConfig
  } catch {
    throw integrity('the seal configuration is malformed')
  }
  if (config.version !== 1 || typeof config.rootKey !== 'string') throw integrity('the seal configuration is malformed')
  if (config.unlock === 'passphrase') checkKdf(config.kdf)
  else if (config.unlock !== 'key-file') throw integrity('the seal configuration is malformed')
  return config
}
