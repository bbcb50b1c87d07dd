// The body of an unseal request, {"passphrase": "..."} or {"key": "<base64>"}, read from its bytes
// straight into sodium secure memory by a strict JSON reader, so that the secret never becomes a
// JS string, which could be neither locked nor wiped.

import sodium from 'sodium-native'
import { KEY_BYTES, type Unlock } from '../barrier/seal-config.js'
import { invalid } from '../errors.js'

/** Base64 characters in a 32-byte key: 256 bits in 6-bit characters, the last one partly used. */
const KEY_CHARS = Math.ceil((KEY_BYTES * 8) / 6)
/** Deeper than any body an unseal client sends, shallow enough for the reader's recursion. */
const MAX_DEPTH = 32

const LITERALS = ['true', 'false', 'null'].map((w) => [...Buffer.from(w)])

const notJson = () => invalid('the request body is not valid JSON')
const badKey = () => invalid('key must be the 32-byte key, base64-encoded')
const badPassphrase = () => invalid('passphrase must be a non-empty string')

/** Where a member's value starts, and whether it is a string. */
interface Member {
  at: number
  string: boolean
}

/**
 * Reads an unseal body into an Unlock whose passphrase or key is in sodium secure memory; the
 * caller wipes it with sodium_memzero. Fields other than key and passphrase (Vault's reset and
 * migrate) are checked as JSON and ignored; a field given twice is refused. Throws `invalid`
 * with the messages the API has always given.
 */
export function readUnsealBody(body: Uint8Array): Unlock {
  const reader = new JsonReader(body)
  const members = body.length === 0 ? new Map<string, Member>() : reader.document()
  const key = members.get('key')
  const passphrase = members.get('passphrase')
  if ((key === undefined) === (passphrase === undefined))
    throw invalid('give either key (the 32-byte key, base64-encoded) or passphrase')
  if (key !== undefined) {
    if (!key.string) throw badKey()
    return { kind: 'key-file', key: reader.base64Key(key.at) }
  }
  if (!passphrase!.string) throw badPassphrase()
  return { kind: 'passphrase', passphrase: reader.utf8(passphrase!.at) }
}

const isDigit = (b: number | undefined) => b !== undefined && b >= 0x30 && b <= 0x39
const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff

/** A strict RFC 8259 reader over bytes that must be UTF-8; every failure is `notJson`. */
class JsonReader {
  readonly #b: Uint8Array
  #pos = 0

  constructor(bytes: Uint8Array) {
    this.#b = bytes
  }

  /**
   * The whole body: one value and nothing after it, which must be an object. Its members, by name;
   * a name given twice is refused, once the body is known to be JSON at all.
   */
  document(): Map<string, Member> {
    this.#space()
    let members: Map<string, Member> | undefined
    let twice: string | undefined
    if (this.#b[this.#pos] === 0x7b) {
      members = new Map()
      this.#container(true, 0, (name, at) => {
        if (members!.has(name)) twice ??= name
        members!.set(name, { at, string: this.#b[at] === 0x22 })
      })
    } else {
      this.#value(0)
    }
    this.#space()
    if (this.#pos !== this.#b.length) throw notJson()
    if (!members) throw invalid('the request body must be a JSON object')
    if (twice !== undefined) {
      const named = twice === 'key' || twice === 'passphrase' ? twice : 'a field'
      throw invalid(`the request body gives ${named} more than once; give it once`)
    }
    return members
  }

  /** Skips one value, checking it. */
  #value(depth: number): void {
    if (depth > MAX_DEPTH) throw invalid(`the request body is nested more than ${MAX_DEPTH} levels deep`)
    const b = this.#b[this.#pos]
    if (b === 0x22) return this.#string(() => {})
    if (b === 0x7b || b === 0x5b) return this.#container(b === 0x7b, depth)
    if (b === 0x2d || isDigit(b)) return this.#number()
    for (const word of LITERALS) {
      if (word.every((c, i) => this.#b[this.#pos + i] === c)) {
        this.#pos += word.length
        return
      }
    }
    throw notJson()
  }

  /** Skips an object or array, checking it; gives `member` each of an object's names and where its value starts. */
  #container(object: boolean, depth: number, member?: (name: string, at: number) => void): void {
    const close = object ? 0x7d : 0x5d
    this.#pos++
    this.#space()
    if (this.#b[this.#pos] === close) {
      this.#pos++
      return
    }
    for (;;) {
      this.#space()
      if (object) {
        if (this.#b[this.#pos] !== 0x22) throw notJson()
        let name = ''
        this.#string(member ? (c) => (name += String.fromCodePoint(c)) : () => {})
        this.#space()
        if (this.#b[this.#pos++] !== 0x3a) throw notJson()
        this.#space()
        member?.(name, this.#pos)
      }
      this.#value(depth + 1)
      this.#space()
      const next = this.#b[this.#pos++]
      if (next === close) return
      if (next !== 0x2c) throw notJson()
    }
  }

  #number(): void {
    if (this.#b[this.#pos] === 0x2d) this.#pos++
    if (this.#b[this.#pos] === 0x30) this.#pos++
    else if (isDigit(this.#b[this.#pos])) while (isDigit(this.#b[this.#pos])) this.#pos++
    else throw notJson()
    if (this.#b[this.#pos] === 0x2e) {
      this.#pos++
      if (!isDigit(this.#b[this.#pos])) throw notJson()
      while (isDigit(this.#b[this.#pos])) this.#pos++
    }
    if (this.#b[this.#pos] === 0x65 || this.#b[this.#pos] === 0x45) {
      this.#pos++
      if (this.#b[this.#pos] === 0x2b || this.#b[this.#pos] === 0x2d) this.#pos++
      if (!isDigit(this.#b[this.#pos])) throw notJson()
      while (isDigit(this.#b[this.#pos])) this.#pos++
    }
  }

  #space(): void {
    for (let b = this.#b[this.#pos]; b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d; b = this.#b[++this.#pos]);
  }

  /**
   * Reads the string at the current position, giving each character to `each` as a code point (a
   * surrogate pair as one; a surrogate escaped alone as itself, for the caller to judge).
   */
  #string(each: (codePoint: number) => void): void {
    const b = this.#b
    this.#pos++
    for (;;) {
      const c = b[this.#pos]
      if (c === undefined || c < 0x20) throw notJson()
      if (c === 0x22) {
        this.#pos++
        return
      }
      if (c !== 0x5c) {
        each(this.#utf8Char())
        continue
      }
      const unit = this.#escape()
      if (isHighSurrogate(unit) && b[this.#pos] === 0x5c && b[this.#pos + 1] === 0x75) {
        const at = this.#pos
        const low = this.#escape()
        if (isLowSurrogate(low)) {
          each(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))
          continue
        }
        this.#pos = at
      }
      each(unit)
    }
  }

  /** One escape sequence at the current position, as a UTF-16 code unit. */
  #escape(): number {
    const e = this.#b[this.#pos + 1]
    this.#pos += 2
    switch (e) {
      case 0x22:
      case 0x5c:
      case 0x2f:
        return e
      case 0x62:
        return 0x08
      case 0x66:
        return 0x0c
      case 0x6e:
        return 0x0a
      case 0x72:
        return 0x0d
      case 0x74:
        return 0x09
      case 0x75: {
        let unit = 0
        for (let i = 0; i < 4; i++) {
          const h = this.#b[this.#pos++]
          const v =
            h === undefined
              ? -1
              : h >= 0x30 && h <= 0x39
                ? h - 0x30
                : (h | 0x20) >= 0x61 && (h | 0x20) <= 0x66
                  ? (h | 0x20) - 0x61 + 10
                  : -1
          if (v < 0) throw notJson()
          unit = (unit << 4) | v
        }
        return unit
      }
      default:
        throw notJson()
    }
  }

  /** One UTF-8 encoded character at the current position; overlong forms and surrogates refused. */
  #utf8Char(): number {
    const b = this.#b
    const lead = b[this.#pos]!
    if (lead < 0x80) {
      this.#pos++
      return lead
    }
    const [length, min] =
      lead >= 0xc2 && lead <= 0xdf
        ? [2, 0x80]
        : lead >= 0xe0 && lead <= 0xef
          ? [3, 0x800]
          : lead >= 0xf0 && lead <= 0xf4
            ? [4, 0x10000]
            : [0, 0]
    if (length === 0) throw notJson()
    let c = lead & (0xff >> (length + 1))
    for (let i = 1; i < length; i++) {
      const next = b[this.#pos + i]
      if (next === undefined || (next & 0xc0) !== 0x80) throw notJson()
      c = (c << 6) | (next & 0x3f)
    }
    if (c < min || c > 0x10ffff || isHighSurrogate(c) || isLowSurrogate(c)) throw notJson()
    this.#pos += length
    return c
  }

  /** The string at `at`, UTF-8 encoded into secure memory of its exact length. */
  utf8(at: number): Buffer {
    let length = 0
    this.#pos = at
    this.#string((c) => {
      if (isHighSurrogate(c) || isLowSurrogate(c))
        throw invalid(
          `passphrase is not valid Unicode: \\u${c.toString(16)} stands alone; give a surrogate pair or the character itself`,
        )
      length += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4
    })
    if (length === 0) throw badPassphrase()
    const out = sodium.sodium_malloc(length)
    let n = 0
    this.#pos = at
    this.#string((c) => {
      if (c < 0x80) out[n++] = c
      else if (c < 0x800) {
        out[n++] = 0xc0 | (c >> 6)
        out[n++] = 0x80 | (c & 0x3f)
      } else if (c < 0x10000) {
        out[n++] = 0xe0 | (c >> 12)
        out[n++] = 0x80 | ((c >> 6) & 0x3f)
        out[n++] = 0x80 | (c & 0x3f)
      } else {
        out[n++] = 0xf0 | (c >> 18)
        out[n++] = 0x80 | ((c >> 12) & 0x3f)
        out[n++] = 0x80 | ((c >> 6) & 0x3f)
        out[n++] = 0x80 | (c & 0x3f)
      }
    })
    return out
  }

  /**
   * The string at `at` decoded from base64 into secure memory, as Buffer.from(s, 'base64') would
   * for the strings the API has always taken: the standard alphabet, then at most two '='.
   */
  base64Key(at: number): Buffer {
    let chars = 0
    let padding = 0
    this.#pos = at
    this.#string((c) => {
      if (c === 0x3d) padding++
      else if (padding > 0 || sextet(c) < 0) throw badKey()
      else chars++
    })
    if (padding > 2 || chars !== KEY_CHARS) throw badKey()
    const out = sodium.sodium_malloc(KEY_BYTES)
    let bits = 0
    let acc = 0
    let n = 0
    this.#pos = at
    this.#string((c) => {
      if (c === 0x3d) return
      acc = ((acc << 6) | sextet(c)) & 0xffff
      bits += 6
      if (bits >= 8) {
        bits -= 8
        out[n++] = (acc >> bits) & 0xff
      }
    })
    return out
  }
}

/** The value of a base64 character, or -1. */
function sextet(c: number): number {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52
  if (c === 0x2b) return 62
  if (c === 0x2f) return 63
  return -1
}
