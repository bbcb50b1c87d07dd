// How a path-declared backend's records look as files: indented JSON, and their times.

import type { EntryInfo } from '../backend.js'

/** Generated content (credentials) stats as this size, an upper bound: a stat never makes any. */
export const GENERATED_SIZE = 1 << 16

/** The bytes a read of these fields gives: indented JSON and a newline, so `cat` reads well. */
export function fieldsValue(fields: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify(fields, null, 2) + '\n', 'utf8')
}

export function fileInfo(entry: { created: Date; modified: Date }, size: number): EntryInfo {
  return { kind: 'file', size, created: entry.created, modified: entry.modified }
}
