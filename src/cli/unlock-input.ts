// What unlocks a store, from the command line: --key-file (32 bytes), --passphrase-file (one line
// break at the end is dropped, as `echo` writes it; the daemon reads the file the same way), or a
// passphrase typed at the terminal. Init may create a missing key file and asks twice.

import { randomBytes } from 'node:crypto'
import { open, readFile } from 'node:fs/promises'
import type { Unlock } from '../barrier/seal-config.js'
import { decodeUtf8 } from '../core/secret-data.js'
import { CliError, UsageError } from './cli-error.js'
import { promptHidden } from './terminal-prompt.js'

export const KEY_BYTES = 32

export interface UnlockFlags {
  passphraseFile?: string
  keyFile?: string
}

export interface UnlockOptions {
  /** Init: create a missing key file (mode 0600), and ask for a passphrase twice. */
  creating?: boolean
}

export async function readUnlock(flags: UnlockFlags, options: UnlockOptions = {}): Promise<Unlock> {
  if (flags.passphraseFile !== undefined && flags.keyFile !== undefined)
    throw new UsageError('give either --passphrase-file or --key-file, not both')
  if (flags.keyFile !== undefined) return { kind: 'key-file', key: await readKeyFile(flags.keyFile, options.creating) }
  const passphrase =
    flags.passphraseFile !== undefined
      ? await readPassphraseFile(flags.passphraseFile)
      : await askPassphrase(options.creating)
  if (passphrase.length === 0) throw new CliError('the passphrase is empty')
  // The API carries a passphrase as a JSON string, so it must be text to arrive byte for byte.
  if (decodeUtf8(passphrase) === undefined) {
    passphrase.fill(0)
    throw new CliError('the passphrase is not UTF-8 text')
  }
  return { kind: 'passphrase', passphrase }
}

export function wipe(unlock: Unlock): void {
  if (unlock.kind === 'passphrase') unlock.passphrase.fill(0)
  else unlock.key.fill(0)
}

async function readKeyFile(file: string, create = false): Promise<Buffer> {
  if (create) {
    const fresh = randomBytes(KEY_BYTES)
    try {
      const handle = await open(file, 'wx', 0o600)
      try {
        await handle.writeFile(fresh)
        await handle.sync()
      } finally {
        await handle.close()
      }
      return fresh
    } catch (e) {
      fresh.fill(0)
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError('create the key file', file, e)
    }
  }
  let key: Buffer
  try {
    key = await readFile(file)
  } catch (e) {
    throw fileError('read the key file', file, e)
  }
  if (key.length !== KEY_BYTES) {
    key.fill(0)
    throw new CliError(`the key file ${file} must hold exactly ${KEY_BYTES} bytes`)
  }
  return key
}

async function readPassphraseFile(file: string): Promise<Buffer> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (e) {
    throw fileError('read the passphrase file', file, e)
  }
  let end = bytes.length
  if (bytes[end - 1] === 0x0a) end--
  if (bytes[end - 1] === 0x0d) end--
  const passphrase = Buffer.from(bytes.subarray(0, end))
  bytes.fill(0)
  return passphrase
}

async function askPassphrase(twice = false): Promise<Buffer> {
  const first = await promptHidden(twice ? 'New passphrase: ' : 'Passphrase: ')
  if (!twice) return first
  const second = await promptHidden('Repeat the passphrase: ')
  const same = first.equals(second)
  second.fill(0)
  if (!same) {
    first.fill(0)
    throw new CliError('the two passphrases differ; nothing was created')
  }
  return first
}

function fileError(what: string, file: string, e: unknown): CliError {
  return new CliError(`cannot ${what} ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
}
