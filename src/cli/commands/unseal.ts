// `secretfs unseal [--passphrase-file FILE | --key-file FILE]`: asks at the terminal otherwise.
// The request's JSON is written by hand into secure memory, so the passphrase or key never
// becomes a JS string, and is zeroed once sent.

import type { Unlock } from '../../barrier/seal-config.js'
import { connect } from '../address.js'
import { doing } from '../cli-error.js'
import { print, printJson, type Format } from '../output.js'
import { secureAlloc, wipe as wipeBytes } from '../secure-bytes.js'
import { readUnlock, wipe } from '../unlock-input.js'
import { statusTable } from './status.js'

export interface UnsealArgs {
  passphraseFile?: string
  keyFile?: string
  format: Format
  address?: string
}

export async function run(args: UnsealArgs): Promise<void> {
  const client = connect(args.address)
  const { socketPath } = client
  // Ask nothing of a daemon that is not there or already unsealed.
  let status = await client.sealStatus()
  if (status.sealed) {
    const unlock = await readUnlock({
      ...(args.passphraseFile !== undefined && { passphraseFile: args.passphraseFile }),
      ...(args.keyFile !== undefined && { keyFile: args.keyFile }),
    })
    let body: Buffer | undefined
    try {
      body = unsealBody(unlock)
      status = await doing('unsealing', client.unseal(body))
    } finally {
      if (body) wipeBytes(body)
      wipe(unlock)
    }
  } else if (args.format !== 'json') process.stderr.write('secretfs is already unsealed.\n')
  if (args.format === 'json') return printJson({ ...status, address: socketPath })
  print(statusTable(status, socketPath))
}

/**
 * {"key":"<base64>"} or {"passphrase":"..."} in secure memory: the same bytes JSON.stringify
 * gives for them (the passphrase is known to be UTF-8).
 */
export function unsealBody(unlock: Unlock): Buffer {
  const [head, value, length, write] =
    unlock.kind === 'key-file'
      ? ['{"key":"', unlock.key, base64Length(unlock.key), writeBase64]
      : ['{"passphrase":"', unlock.passphrase, escapedLength(unlock.passphrase), writeEscaped]
  const tail = '"}'
  const out = secureAlloc(head.length + length + tail.length)
  out.write(head, 0, 'latin1')
  write(value, out, head.length)
  out.write(tail, head.length + length, 'latin1')
  return out
}

// JSON's two-character escapes; other control characters are written \u00XX.
const SHORT_ESCAPES = new Map([...'"\\\b\f\n\r\t'].map((c, i) => [c.charCodeAt(0), '"\\bfnrt'.charCodeAt(i)]))
const HEX = Buffer.from('0123456789abcdef')
const BACKSLASH = 0x5c

function escapedLength(bytes: Uint8Array): number {
  let n = 0
  for (const b of bytes) n += SHORT_ESCAPES.has(b) ? 2 : b < 0x20 ? 6 : 1
  return n
}

function writeEscaped(bytes: Uint8Array, out: Buffer, at: number): void {
  for (const b of bytes) {
    const short = SHORT_ESCAPES.get(b)
    if (short !== undefined) {
      out[at++] = BACKSLASH
      out[at++] = short
    } else if (b < 0x20) {
      out.write('\\u00', at, 'latin1')
      out[at + 4] = HEX[b >> 4]!
      out[at + 5] = HEX[b & 0xf]!
      at += 6
    } else out[at++] = b
  }
}

const BASE64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')
const PAD = 0x3d

const base64Length = (bytes: Uint8Array): number => 4 * Math.ceil(bytes.length / 3)

function writeBase64(bytes: Uint8Array, out: Buffer, at: number): void {
  for (let i = 0; i < bytes.length; i += 3) {
    const left = bytes.length - i
    const n = (bytes[i]! << 16) | ((left > 1 ? bytes[i + 1]! : 0) << 8) | (left > 2 ? bytes[i + 2]! : 0)
    out[at++] = BASE64[(n >> 18) & 63]!
    out[at++] = BASE64[(n >> 12) & 63]!
    out[at++] = left > 1 ? BASE64[(n >> 6) & 63]! : PAD
    out[at++] = left > 2 ? BASE64[n & 63]! : PAD
  }
}
