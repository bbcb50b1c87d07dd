// What unlocks a store, from the command line: --key-file (32 bytes), --passphrase-file (one line
// break at the end is dropped, as `echo` writes it), or a passphrase typed at the terminal. A key
// or passphrase file must be ours alone, as ssh demands of its keys. Every byte is held in secure
// memory until wipe(). Init may create a missing key file, and a new store asks twice.

import { isUtf8 } from 'node:buffer'
import { open, rm, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import sodium from 'sodium-native'
import { KEY_BYTES, type Unlock } from '../barrier/seal-config.js'
import { notOwned, openToOthers, syncDirectory } from '../os/private-path.js'
import { CliError, UsageError } from './cli-error.js'
import { SecureBytes, secureAlloc, wipe as wipeBytes } from './secure-bytes.js'
import { promptHidden } from './terminal-prompt.js'

/** A passphrase file larger than this is surely the wrong file. */
const MAX_PASSPHRASE_FILE_BYTES = 64 * 1024

export interface UnlockFlags {
  passphraseFile?: string
  keyFile?: string
}

export interface UnlockOptions {
  /** A new store: a typed passphrase is asked twice. */
  askTwice?: boolean
  /** Init: create a missing key file (mode 0600). */
  createKeyFile?: boolean
}

export async function readUnlock(flags: UnlockFlags, options: UnlockOptions = {}): Promise<Unlock> {
  if (flags.passphraseFile !== undefined && flags.keyFile !== undefined)
    throw new UsageError('give either --passphrase-file or --key-file, not both')
  if (flags.keyFile !== undefined)
    return { kind: 'key-file', key: await readKeyFile(flags.keyFile, options.createKeyFile) }
  const passphrase =
    flags.passphraseFile !== undefined
      ? await readPassphraseFile(flags.passphraseFile)
      : await askPassphrase(options.askTwice)
  // The API carries a passphrase as a JSON string, so it must be text to arrive byte for byte.
  let problem: string | undefined
  if (passphrase.length === 0) problem = 'the passphrase is empty'
  else if (!isUtf8(passphrase)) problem = 'the passphrase is not UTF-8 text'
  if (problem) {
    wipeBytes(passphrase)
    throw new CliError(problem)
  }
  return { kind: 'passphrase', passphrase }
}

export function wipe(unlock: Unlock): void {
  wipeBytes(unlock.kind === 'passphrase' ? unlock.passphrase : unlock.key)
}

async function readKeyFile(file: string, create = false): Promise<Buffer> {
  if (create) {
    const fresh = await createKeyFile(file)
    if (fresh) return fresh
  }
  return readPrivateFile(file, 'key file', KEY_BYTES)
}

/** A new random key written to `file` (0600, durably), or undefined when the file exists. */
async function createKeyFile(file: string): Promise<Buffer | undefined> {
  let handle: FileHandle
  try {
    handle = await open(file, 'wx', 0o600)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined
    throw fileError('create the key file', file, e)
  }
  const key = secureAlloc(KEY_BYTES)
  sodium.randombytes_buf(key)
  try {
    try {
      // The mode asked of open() passes through the umask; this one does not.
      await handle.chmod(0o600)
      await handle.write(key, 0, KEY_BYTES, 0)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await syncDirectory(dirname(file))
  } catch (e) {
    wipeBytes(key)
    // Ours since the exclusive create: a key file half written must not be taken for a key.
    await rm(file, { force: true })
    throw fileError('write the key file', file, e)
  }
  return key
}

async function readPassphraseFile(file: string): Promise<Buffer> {
  const bytes = await readPrivateFile(file, 'passphrase file')
  let end = bytes.length
  if (bytes[end - 1] === 0x0a) end--
  if (bytes[end - 1] === 0x0d) end--
  return bytes.subarray(0, end)
}

/**
 * The contents of a key or passphrase file in secure memory, read through one open descriptor
 * that is first checked: ours (or root's) and closed to others. `exactly`: the size it must have.
 */
export async function readPrivateFile(file: string, what: string, exactly?: number): Promise<Buffer> {
  let handle: FileHandle
  try {
    handle = await open(file, 'r')
  } catch (e) {
    throw fileError(`read the ${what}`, file, e)
  }
  try {
    const st = await handle.stat()
    const owner = notOwned(st, { rootMayOwn: true })
    if (owner)
      throw new CliError(
        `the ${what} ${file} ${owner}`,
        "secretfs takes only a file of yours (or root's): make a copy of your own, and chmod 600 it.",
      )
    const exposed = openToOthers(st)
    if (exposed)
      throw new CliError(
        `the ${what} ${file} ${exposed}; secretfs refuses it, as ssh refuses such keys`,
        `Fix it with: chmod 600 ${file}`,
      )
    if (!st.isFile() && !st.isFIFO()) throw new CliError(`the ${what} ${file} is not a regular file`)
    const limit = exactly ?? MAX_PASSPHRASE_FILE_BYTES
    if (st.isFile() && (exactly === undefined ? st.size > limit : st.size !== exactly))
      throw sizeError(what, file, exactly)
    const bytes = st.isFile() ? await readFull(handle, st.size) : await readStream(handle, limit + 1)
    if (bytes.length > limit || (exactly !== undefined && bytes.length !== exactly)) {
      wipeBytes(bytes)
      throw sizeError(what, file, exactly)
    }
    return bytes
  } finally {
    await handle.close()
  }
}

/** A regular file's `size` bytes (fewer if it shrank meanwhile). */
async function readFull(handle: FileHandle, size: number): Promise<Buffer> {
  const out = secureAlloc(size)
  let n = 0
  try {
    while (n < size) {
      const { bytesRead } = await handle.read(out, n, size - n, n)
      if (bytesRead === 0) break
      n += bytesRead
    }
  } catch (e) {
    wipeBytes(out)
    throw e
  }
  return out.subarray(0, n)
}

/** What a pipe (`--passphrase-file <(pass show x)`) gives, up to `max` bytes. */
async function readStream(handle: FileHandle, max: number): Promise<Buffer> {
  const chunk = secureAlloc(4096)
  const gathered = new SecureBytes()
  try {
    while (gathered.length < max) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) break
      gathered.append(chunk.subarray(0, bytesRead))
    }
  } catch (e) {
    gathered.wipe()
    throw e
  } finally {
    wipeBytes(chunk)
  }
  return gathered.take()
}

function sizeError(what: string, file: string, exactly: number | undefined): CliError {
  return new CliError(
    exactly !== undefined
      ? `the ${what} ${file} must hold exactly ${exactly} bytes`
      : `the ${what} ${file} is larger than ${MAX_PASSPHRASE_FILE_BYTES / 1024} KiB; is it the right file?`,
  )
}

async function askPassphrase(twice = false): Promise<Buffer> {
  const first = await promptHidden(twice ? 'New passphrase: ' : 'Passphrase: ')
  if (!twice) return first
  let second: Buffer
  try {
    second = await promptHidden('Repeat the passphrase: ')
  } catch (e) {
    wipeBytes(first)
    throw e
  }
  const same = first.equals(second)
  wipeBytes(second)
  if (!same) {
    wipeBytes(first)
    throw new CliError('the two passphrases differ; nothing was created')
  }
  return first
}

function fileError(what: string, file: string, e: unknown): CliError {
  return new CliError(`cannot ${what} ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
}
