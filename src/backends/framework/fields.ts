// The fields a path-declared backend accepts on a write, as Vault's framework.FieldSchema: a write
// arrives as bytes (the CLI's JSON object of strings, or whatever a program wrote to the file),
// is parsed into fields, and each declared field is checked for its type. Values are never echoed
// in an error: a field may hold a secret.

import { invalid } from '../../errors.js'
import { parseDuration } from '../../api/duration.js'
import { decodeUtf8, isFields, type Fields } from '../../core/secret-data.js'

export type FieldType =
  /** Text; a JSON object or array given for it is kept as its JSON text (a policy document). */
  | 'string'
  /** A whole number, or its decimal text. */
  | 'int'
  /** true or false, or their text (also 1 and 0). */
  | 'bool'
  /** Seconds: a whole number, or a duration such as "1h30m" (see parseDuration). */
  | 'duration'
  /** Names: a JSON array of strings, or text "a,b" (or the text of a JSON array). */
  | 'string-list'
  /** Key/value pairs: an object of strings, a list of "k=v", or text "k=v,k2=v2". */
  | 'kv-pairs'
  /**
   * SQL: a JSON array of strings, or text, kept whole as one entry (never split at commas, which
   * SQL is full of: `GRANT SELECT, INSERT`).
   */
  | 'statements'

export type FieldValue = string | number | boolean | string[] | Map<string, string>

export type FieldSchemas = Readonly<Record<string, FieldType>>

/** The checked fields of one write: only declared names, each of its declared type. */
export class FieldData {
  readonly #values: Map<string, FieldValue>

  constructor(values: Map<string, FieldValue>) {
    this.#values = values
  }

  has(name: string): boolean {
    return this.#values.has(name)
  }

  /** The names given, in the order given. */
  names(): string[] {
    return [...this.#values.keys()]
  }

  string(name: string): string | undefined {
    const v = this.#values.get(name)
    return typeof v === 'string' ? v : undefined
  }

  number(name: string): number | undefined {
    const v = this.#values.get(name)
    return typeof v === 'number' ? v : undefined
  }

  bool(name: string): boolean | undefined {
    const v = this.#values.get(name)
    return typeof v === 'boolean' ? v : undefined
  }

  list(name: string): string[] | undefined {
    const v = this.#values.get(name)
    return Array.isArray(v) ? v : undefined
  }

  pairs(name: string): Map<string, string> | undefined {
    const v = this.#values.get(name)
    return v instanceof Map ? v : undefined
  }
}

/**
 * The fields a write body holds: a JSON object, or `key=value` lines (blank lines and `#`
 * comments ignored). `what` names the path in messages ("a role").
 */
export function parseBody(bytes: Uint8Array, what: string): Fields {
  const text = decodeUtf8(bytes)
  if (text === undefined)
    throw invalid(`${what} is written as a JSON object or key=value lines; this is not UTF-8 text`)
  const trimmed = text.trim()
  if (trimmed.startsWith('{')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(trimmed)
    } catch {
      throw invalid(`${what} is written as a JSON object or key=value lines; this looks like JSON but does not parse`)
    }
    if (!isFields(parsed)) throw invalid(`${what} is written as a JSON object or key=value lines`)
    return parsed
  }
  const out: Fields = {}
  const lines = text.split(/\r?\n/)
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    if (eq <= 0) throw invalid(`line ${i + 1} of ${what} is not key=value (nor is the whole a JSON object)`)
    const key = line.slice(0, eq).trim()
    if (Object.hasOwn(out, key)) throw invalid(`field ${quoteName(key)} is given twice`)
    out[key] = line.slice(eq + 1).trim()
  }
  return out
}

/** Checks every field of `raw` against `schemas`: an unknown name or a wrong type is refused. */
export function checkFields(raw: Fields, schemas: FieldSchemas, what: string): FieldData {
  const values = new Map<string, FieldValue>()
  for (const [name, value] of Object.entries(raw)) {
    if (!Object.hasOwn(schemas, name))
      throw invalid(`${what} has no field ${quoteName(name)}; its fields are ${Object.keys(schemas).join(', ')}`)
    values.set(name, convert(value, schemas[name]!, name))
  }
  return new FieldData(values)
}

/** A field name as a message may show it: a name a user typed is data, so it is quoted and cut. */
export function quoteName(name: string): string {
  return JSON.stringify(name.length > 64 ? name.slice(0, 64) + '…' : name)
}

function convert(value: unknown, type: FieldType, name: string): FieldValue {
  switch (type) {
    case 'string':
      if (typeof value === 'string') return value
      if (typeof value === 'object' && value !== null) return JSON.stringify(value)
      throw invalid(`${name} must be text`)
    case 'int': {
      const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw invalid(`${name} must be a whole number`)
      return n
    }
    case 'bool':
      if (typeof value === 'boolean') return value
      if (value === 'true' || value === '1') return true
      if (value === 'false' || value === '0') return false
      throw invalid(`${name} must be true or false`)
    case 'duration':
      return parseDuration(value, name)
    case 'string-list':
      return stringList(value, name)
    case 'kv-pairs':
      return kvPairs(value, name)
    case 'statements':
      return statements(value, name)
  }
}

function stringList(value: unknown, name: string): string[] {
  if (typeof value === 'string') {
    const text = value.trim()
    if (text.startsWith('[')) return stringList(parseJson(text, name), name)
    return text === '' ? [] : text.split(',').map((s) => s.trim())
  }
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.map((s) => s.trim())
  throw invalid(`${name} must be a list of names: "a,b" or a JSON array of strings`)
}

function statements(value: unknown, name: string): string[] {
  if (typeof value === 'string') {
    const text = value.trim()
    if (text.startsWith('[')) return statements(parseJson(text, name), name)
    return text === '' ? [] : [text]
  }
  if (Array.isArray(value) && value.every((v) => typeof v === 'string'))
    return value.map((s) => s.trim()).filter((s) => s !== '')
  throw invalid(`${name} must be SQL text, or a JSON array of SQL texts`)
}

function kvPairs(value: unknown, name: string): Map<string, string> {
  const out = new Map<string, string>()
  const bad = () =>
    invalid(`${name} must be key=value pairs: "k=v,k2=v2", a list of "k=v", or a JSON object of strings`)
  if (typeof value === 'string') {
    const text = value.trim()
    if (text.startsWith('{') || text.startsWith('[')) return kvPairs(parseJson(text, name), name)
    if (text === '') return out
    return kvPairs(text.split(','), name)
  }
  if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item !== 'string') throw bad()
      const eq = item.indexOf('=')
      if (eq <= 0) throw bad()
      out.set(item.slice(0, eq).trim(), item.slice(eq + 1).trim())
    }
    return out
  }
  if (isFields(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (typeof v !== 'string') throw bad()
      out.set(k, v)
    }
    return out
  }
  throw bad()
}

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    throw invalid(`${name} looks like JSON but does not parse`)
  }
}
