// A backend declared as a list of paths, as Vault's framework.Path: each path is a pattern
// ('config/root', 'roles/:name') with its fields and operations, and this class matches a request
// to its path, checks the written fields, and dispatches stat, read, list, write and delete.
// Directories are the static prefixes of the patterns; a ':name' part lists what `names` gives.

import { invalid, isDir, notDir, notFound, readOnly, tooLarge, unsupported } from '../../errors.js'
import type { Fields } from '../../core/secret-data.js'
import type { Backend, EntryInfo, ReadResult } from '../backend.js'
import { checkFields, parseBody, type FieldData, type FieldSchemas } from './fields.js'

/** The values of a pattern's ':name' parts, by part name. */
export type Params = Readonly<Record<string, string>>

export interface PathSpec {
  /** Slash-separated parts; a part ':name' matches one name (see NAME). */
  pattern: string
  /** What messages call a value of this path: 'the root configuration', 'a role'. */
  what: string
  /** The fields a write accepts. */
  fields?: FieldSchemas
  /** Turns a written body that is not made of this path's fields into them (a bare document). */
  preprocess?(raw: Fields): Fields
  stat(params: Params): Promise<EntryInfo | undefined>
  read?(params: Params): Promise<ReadResult>
  write?(params: Params, data: FieldData): Promise<void>
  delete?(params: Params): Promise<void>
  /** For a pattern that ends in a ':name' part: the names its directory holds. */
  names?(params: Params): Promise<string[]>
}

/** Vault's GenericNameWithAtRegex: what a ':name' part accepts. */
const NAME = /^\w(?:[\w.@-]*\w)?$/

interface Compiled {
  spec: PathSpec
  parts: string[]
}

type Match = { kind: 'file'; spec: PathSpec; params: Params } | { kind: 'dir'; children: Compiled[]; depth: number }

export class PathBackend implements Backend {
  readonly #paths: Compiled[]
  readonly #maxValueSize: number
  readonly #started = new Date()

  constructor(paths: PathSpec[], maxValueSize: number) {
    this.#paths = paths.map((spec) => {
      const parts = spec.pattern.split('/')
      if (parts.slice(0, -1).some((p) => p.startsWith(':')))
        throw new Error('only the last part of a path pattern may be a parameter')
      return { spec, parts }
    })
    this.#maxValueSize = maxValueSize
  }

  async stat(path: string): Promise<EntryInfo | undefined> {
    const m = this.#match(path)
    if (m?.kind === 'dir') return { kind: 'dir', size: 0, created: this.#started, modified: this.#started }
    return m?.spec.stat(m.params)
  }

  async read(path: string): Promise<ReadResult> {
    const m = this.#match(path)
    if (m?.kind === 'dir') throw isDir()
    if (!m?.spec.read) throw notFound()
    return m.spec.read(m.params)
  }

  async list(path: string): Promise<string[]> {
    const m = this.#match(path)
    if (!m) throw notFound()
    if (m.kind === 'file') {
      if (await m.spec.stat(m.params)) throw notDir()
      throw notFound()
    }
    const names = new Set<string>()
    for (const c of m.children) {
      const part = c.parts[m.depth]!
      if (c.parts.length > m.depth + 1) names.add(part + '/')
      else if (part.startsWith(':')) for (const n of (await c.spec.names?.({})) ?? []) names.add(n)
      else if (await c.spec.stat({})) names.add(part)
    }
    return [...names].sort()
  }

  async write(path: string, value: Uint8Array): Promise<void> {
    const m = this.#matchForWrite(path)
    if (!m.spec.write) throw readOnly(`${m.spec.what} cannot be written`)
    if (value.length > this.#maxValueSize)
      throw tooLarge(`a value is limited to ${this.#maxValueSize} bytes; this one has ${value.length}`)
    let raw = parseBody(value, m.spec.what)
    if (m.spec.preprocess) raw = m.spec.preprocess(raw)
    const data = checkFields(raw, m.spec.fields ?? {}, m.spec.what)
    await m.spec.write(m.params, data)
  }

  async delete(path: string): Promise<void> {
    const m = this.#matchForWrite(path)
    if (!m.spec.delete) throw unsupported(`${m.spec.what} cannot be deleted`)
    await m.spec.delete(m.params)
  }

  /** The file path a write or delete names, or an error that says what the paths are. */
  #matchForWrite(path: string): { spec: PathSpec; params: Params } {
    const m = this.#match(path)
    if (m?.kind === 'file') return m
    if (m?.kind === 'dir') throw isDir()
    const parts = path.split('/')
    const shaped = this.#paths.find((c) => sameShape(c.parts, parts))
    if (shaped)
      throw invalid(
        `a name in ${shaped.parts.slice(0, -1).join('/')}/ is letters, digits, '_', '-', '.' and '@', starting and ending with a letter or digit`,
      )
    const known = this.#paths.map((c) =>
      c.parts.map((p) => (p.startsWith(':') ? p.slice(1).toUpperCase() : p)).join('/'),
    )
    throw unsupported(`this mount has no such path; its paths are ${known.join(', ')}`)
  }

  #match(path: string): Match | undefined {
    const parts = path === '' ? [] : path.split('/')
    for (const c of this.#paths) {
      if (c.parts.length !== parts.length) continue
      const params: Record<string, string> = {}
      let ok = true
      for (const [i, p] of c.parts.entries()) {
        const given = parts[i]!
        if (p.startsWith(':') && NAME.test(given)) params[p.slice(1)] = given
        else if (p !== given) ok = false
      }
      if (ok) return { kind: 'file', spec: c.spec, params }
    }
    const children = this.#paths.filter(
      (c) => c.parts.length > parts.length && parts.every((given, i) => c.parts[i] === given),
    )
    return children.length > 0 ? { kind: 'dir', children, depth: parts.length } : undefined
  }
}

/** Whether `parts` has the shape of the pattern `pattern` but for the value of its parameter. */
function sameShape(pattern: string[], parts: string[]): boolean {
  return pattern.length === parts.length && pattern.every((p, i) => p.startsWith(':') || p === parts[i])
}
