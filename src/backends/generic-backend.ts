// The generic backend: stores what is written, exactly, and gives it back. Secrets nest in
// directories; a directory exists while it holds something, or after mkdir until rmdir (a marker
// entry '.' inside it, a name no user path can have).

import { exists, invalid, isDir, notDir, notEmpty, notFound, tooLarge } from '../errors.js'
import { parentOf } from '../core/paths.js'
import type { StorageView, BarrierOp } from '../barrier/barrier.js'
import type { Backend, BackendContext, EntryInfo, ReadResult } from './backend.js'

const MARKER = '.'
// version u8 | created ms f64 | modified ms f64 | value
const FORMAT = 1
const HEADER = 17

interface Record {
  created: Date
  modified: Date
  value: Uint8Array
}

/** What a record says without its value (the decrypted value is zeroed at once). */
interface Meta {
  created: Date
  modified: Date
  size: number
}

function encode(r: Record): Buffer {
  const out = Buffer.allocUnsafe(HEADER + r.value.length)
  out.writeUInt8(FORMAT, 0)
  out.writeDoubleBE(r.created.getTime(), 1)
  out.writeDoubleBE(r.modified.getTime(), 9)
  out.set(r.value, HEADER)
  return out
}

function decode(raw: Uint8Array): Record {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.length)
  if (buf.length < HEADER || buf.readUInt8(0) !== FORMAT) throw invalid('unknown record format')
  return {
    created: new Date(buf.readDoubleBE(1)),
    modified: new Date(buf.readDoubleBE(9)),
    value: buf.subarray(HEADER),
  }
}

/** Entries whose times and size are kept in memory at most (the oldest kept is dropped first). */
const METAS_KEPT = 16_384

const dirPrefix = (path: string): string => (path === '' ? '' : path + '/')
const markerOf = (path: string): string => dirPrefix(path) + MARKER

export class GenericBackend implements Backend {
  readonly #storage: StorageView
  readonly #maxValueSize: number
  /**
   * The times and size of entries read or written here, so that a stat (each lookup the kernel
   * makes) reads and decrypts nothing. Every write, delete and rename here keeps it true; a change
   * another daemon made drops it (changedElsewhere). Names and sizes only, never a value.
   */
  readonly #metas = new Map<string, Meta>()
  /** Changes to the store made here (counted as each starts and ends) and heard of from others. */
  #changes = 0
  /** The last name a stat found missing, and #changes when it began. */
  #missing?: { path: string; changes: number }

  constructor(ctx: BackendContext) {
    this.#storage = ctx.storage
    this.#maxValueSize = ctx.maxValueSize
  }

  /** The record at `path`, value decrypted: the caller hands it on or zeroes it. */
  async #record(path: string): Promise<Record | undefined> {
    if (path === '') return undefined
    const raw = await this.#storage.get(path)
    return raw && decode(raw)
  }

  /** The record's times and size; its decrypted value never outlives this call. */
  async #meta(path: string): Promise<Meta | undefined> {
    const kept = this.#metas.get(path)
    if (kept) return kept
    const raw = path === '' ? undefined : await this.#storage.get(path)
    return raw && this.#metaOf(path, raw)
  }

  /** The times and size of the record `raw` read at `path`, kept; its value is zeroed. */
  #metaOf(path: string, raw: Uint8Array): Meta {
    const record = decode(raw)
    record.value.fill(0)
    const meta = { created: record.created, modified: record.modified, size: record.value.length }
    this.#keep(path, meta)
    return meta
  }

  #keep(path: string, meta: Meta): void {
    this.#metas.delete(path)
    if (this.#metas.size >= METAS_KEPT) this.#metas.delete(this.#metas.keys().next().value!)
    this.#metas.set(path, meta)
  }

  /** Stores `record`, then zeroes the plaintext copy made to store it. */
  async #put(path: string, record: Record): Promise<void> {
    const encoded = encode(record)
    try {
      await this.#changing(() => this.#storage.put(path, encoded))
    } finally {
      encoded.fill(0)
    }
    this.#keep(path, { created: record.created, modified: record.modified, size: record.value.length })
  }

  /**
   * What is at `path` ('' excepted): a secret's times and size (kept), else whether it is a
   * directory (a marker or anything beneath it). A name is one or the other, never both; one
   * query tells them and a missing name apart.
   */
  async #find(path: string): Promise<{ meta?: Meta; dir: boolean }> {
    const kept = this.#metas.get(path)
    if (kept) return { meta: kept, dir: false }
    const { value, dir } = await this.#storage.probe(path)
    return value ? { meta: this.#metaOf(path, value), dir: false } : { dir }
  }

  /** Whether `path` is a directory: it has a marker or anything beneath it. */
  async #isDir(path: string): Promise<boolean> {
    return path === '' || (await this.#storage.list(dirPrefix(path), 1)).length > 0
  }

  /** Whether the directory `path` holds anything but its marker. */
  async #hasChildren(path: string): Promise<boolean> {
    return (await this.#storage.list(dirPrefix(path), 2)).some((n) => n !== MARKER)
  }

  /** The children of a directory, without its marker; undefined if it does not exist. */
  async #children(path: string): Promise<string[] | undefined> {
    const names = await this.#storage.list(dirPrefix(path))
    if (path === '') return names.filter((n) => n !== MARKER)
    if (names.length === 0) return undefined
    return names.filter((n) => n !== MARKER)
  }

  async stat(path: string): Promise<EntryInfo | undefined> {
    if (path === '') return dirInfo(new Date(0))
    const changes = this.#changes
    // A name is a secret or a directory, never both: a directory's kept marker answers alone.
    const marker = this.#metas.has(path) ? undefined : this.#metas.get(markerOf(path))
    if (marker) return dirInfo(marker.modified)
    const { meta, dir } = await this.#find(path)
    if (meta) return { kind: 'file', size: meta.size, created: meta.created, modified: meta.modified, cacheable: true }
    if (!dir) {
      this.#missing = { path, changes }
      return undefined
    }
    return dirInfo((await this.#meta(markerOf(path)))?.modified ?? new Date())
  }

  async read(path: string): Promise<ReadResult> {
    const record = await this.#record(path)
    if (record) return { ...record, cacheable: true }
    if (await this.#isDir(path)) throw isDir()
    throw notFound()
  }

  async list(path: string): Promise<string[]> {
    const children = await this.#children(path)
    if (children !== undefined) return children
    if (await this.#meta(path)) throw notDir()
    throw notFound()
  }

  async write(path: string, value: Uint8Array): Promise<{ cacheable: true }> {
    if (path === '') throw isDir()
    if (value.length > this.#maxValueSize)
      throw tooLarge(`a secret is limited to ${this.#maxValueSize} bytes; this one has ${value.length}`)
    await this.#checkAncestors(path)
    // Found missing by a stat with no change here since (a new file's lookup, then its commit).
    const missing = this.#missing?.path === path && this.#missing.changes === this.#changes
    const found = missing ? undefined : await this.#find(path)
    if (found?.dir) throw isDir()
    const old = found?.meta
    const now = new Date()
    await this.#put(path, { created: old?.created ?? now, modified: now, value })
    return { cacheable: true }
  }

  async delete(path: string): Promise<void> {
    const { meta, dir } = await this.#find(path)
    if (meta) {
      await this.#changing(() => this.#storage.delete(path))
      this.#metas.delete(path)
      return
    }
    throw dir ? isDir() : notFound()
  }

  async mkdir(path: string): Promise<void> {
    if (path === '') throw exists()
    await this.#checkAncestors(path)
    const { meta, dir } = await this.#find(path)
    if (meta || dir) throw exists()
    const now = new Date()
    await this.#put(markerOf(path), { created: now, modified: now, value: new Uint8Array() })
  }

  async rmdir(path: string): Promise<void> {
    if (path === '') throw invalid('the top of a mount cannot be removed')
    if (!(await this.#isDir(path))) throw (await this.#meta(path)) ? notDir() : notFound()
    if (await this.#hasChildren(path)) throw notEmpty()
    await this.#changing(() => this.#storage.delete(markerOf(path)))
    this.#metas.delete(markerOf(path))
  }

  async rename(from: string, to: string): Promise<void> {
    if (from === '' || to === '') throw invalid('the top of a mount cannot be moved')
    if (from === to) return
    await this.#checkAncestors(to)
    const file = await this.#record(from)
    const target = await this.stat(to)
    if (file) {
      const encoded = encode(file)
      file.value.fill(0)
      try {
        if (target?.kind === 'dir') throw isDir()
        await this.#changing(() =>
          this.#storage.batch([
            { op: 'put', path: to, value: encoded },
            { op: 'delete', path: from },
          ]),
        )
        this.#metas.delete(from)
        this.#metas.delete(to)
      } finally {
        encoded.fill(0)
      }
      return
    }
    if (!(await this.#isDir(from))) throw notFound()
    if (to.startsWith(from + '/')) throw invalid('a directory cannot move inside itself')
    if (target?.kind === 'file') throw notDir()
    if (target?.kind === 'dir' && (await this.#hasChildren(to))) throw notEmpty()
    // Names and values are sealed with their paths, so every entry beneath is rewritten.
    const ops: BarrierOp[] = [{ op: 'delete-prefix', prefix: dirPrefix(to) }]
    const plaintexts: Uint8Array[] = []
    try {
      for (const key of await walk(this.#storage, dirPrefix(from))) {
        const raw = await this.#storage.get(key)
        if (!raw) continue
        plaintexts.push(raw)
        ops.push({ op: 'put', path: dirPrefix(to) + key.slice(from.length + 1), value: raw })
      }
      ops.push({ op: 'delete-prefix', prefix: dirPrefix(from) })
      await this.#changing(() => this.#storage.batch(ops))
      this.#metas.clear()
    } finally {
      for (const p of plaintexts) p.fill(0)
    }
  }

  /** Another daemon sharing the store changed an entry (or, for '', any of them). */
  changedElsewhere(): void {
    this.#metas.clear()
    this.#changes++
  }

  close(): void {
    this.#metas.clear()
    this.#changes++
  }

  async #changing(work: () => Promise<void>): Promise<void> {
    this.#changes++
    try {
      await work()
    } finally {
      this.#changes++
    }
  }

  /** Refuses a path under an existing secret: a name is a secret or a directory, never both. */
  async #checkAncestors(path: string): Promise<void> {
    for (let p = parentOf(path).parent; p !== ''; p = parentOf(p).parent) {
      // A directory made here (its marker is kept) has only directories above it.
      if (this.#metas.has(markerOf(p))) return
      if (await this.#meta(p)) throw notDir()
    }
  }
}

function dirInfo(time: Date): EntryInfo {
  return { kind: 'dir', size: 0, created: time, modified: time, newFilesCacheable: true }
}

/** Every key under the directory `prefix`, recursively. */
export async function walk(storage: StorageView, prefix: string): Promise<string[]> {
  const out: string[] = []
  for (const name of await storage.list(prefix)) {
    if (name.endsWith('/')) out.push(...(await walk(storage, prefix + name)))
    else out.push(prefix + name)
  }
  return out
}

export const genericBackend = (ctx: BackendContext): Backend => new GenericBackend(ctx)
