// How a stored value (any bytes) and the API's fields map onto each other. A write of fields
// stores them as one JSON object; a read presents a stored JSON object as its fields and any other
// value as the single field `value`, base64-encoded when it is not UTF-8 text.

export type Fields = Record<string, unknown>

export interface PresentedValue {
  data: Fields
  /** Set when `data.value` holds the stored bytes base64-encoded (they are not UTF-8 text). */
  encoding?: 'base64'
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }) // a BOM is part of the value

/** The bytes a write of these fields stores: the JSON object and a newline, so `cat` ends its line. */
export function encodeFields(fields: Fields): Uint8Array {
  return Buffer.from(JSON.stringify(fields) + '\n', 'utf8')
}

/** The text of `bytes`, or undefined when they are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

export function isFields(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The fields a read presents for a stored value. */
export function presentValue(bytes: Uint8Array): PresentedValue {
  const text = decodeUtf8(bytes)
  if (text === undefined) return { data: { value: Buffer.from(bytes).toString('base64') }, encoding: 'base64' }
  const trimmed = text.trim()
  if (trimmed.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(trimmed)
      if (isFields(parsed)) return { data: parsed }
    } catch {
      // Not JSON after all: it is presented as text, like any other value.
    }
  }
  return { data: { value: text } }
}
