// The embedded default store: one SQLite file, WAL journal, synchronous=FULL so that an
// acknowledged write survives kill -9 and power loss. Writes issued while a commit is pending
// are grouped into the next transaction (group commit); each caller is answered only after the
// transaction holding its write is on disk. The WAL is emptied once writes stop, and given back
// its working size in zeros, so that a commit overwrites blocks the file already has.

import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { internal, invalid, noSpace } from '../errors.js'
import { notOwned } from '../os/private-path.js'
import type { Probed, Storage, StorageOp } from './storage.js'

/** Keys a scan reads at most at a time. */
const PAGE = 256
/** Once no commit came for this long, the WAL is copied into the database file and emptied. */
export const IDLE_CHECKPOINT_MS = 1_000
/** Frames after which SQLite copies the WAL into the database and starts it anew (its default). */
const WAL_FRAMES = 1_000
/**
 * After a burst of at least this many commits, the emptied WAL is given its working size back in
 * zeros (#zeroWal): the next burst is likely as long. A lone write is not worth it.
 */
const BURST_COMMITS = 64
/** Frames given in zeros: WAL_FRAMES, and a few for the commit that crosses it. */
const WAL_ZEROED_FRAMES = WAL_FRAMES + 64
/** ... where the disk has this many times that free: a speed-up is no reason to fill a disk. */
const WAL_ZEROED_FREE_FACTOR = 16

interface Scan {
  /** Keys from a first key (inclusive) up to an end (exclusive). */
  bounded: Database.Statement<[string, string], { key: string }>
  /** Keys from a first key to the last. */
  open: Database.Statement<[string], { key: string }>
}

interface Pending {
  ops: StorageOp[]
  resolve: () => void
  reject: (e: unknown) => void
}

function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** Refuses a store file that is a link, not a regular file, or another user's. */
function checkStoreFile(file: string, st: fs.Stats): void {
  if (st.isSymbolicLink())
    throw invalid(`${file} is a symbolic link; the store's files must be regular files of yours. Remove it.`)
  if (!st.isFile()) throw invalid(`${file} is not a regular file; the store's files must be regular files of yours`)
  const owner = notOwned(st)
  if (owner) throw invalid(`${file} ${owner}`)
}

/** Creates the store file, or opens it without following a link, checks it and makes it 0600. */
function claimStoreFile(file: string): void {
  let fd
  try {
    // O_NONBLOCK: a FIFO put in its place must be refused, not waited on.
    fd = fs.openSync(
      file,
      fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
      0o600,
    )
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ELOOP') checkStoreFile(file, fs.lstatSync(file))
    if (code === 'EISDIR')
      throw invalid(`${file} is not a regular file; the store's files must be regular files of yours`)
    throw e
  }
  try {
    checkStoreFile(file, fs.fstatSync(fd))
    // On the open file: the path might name something else by now, never the descriptor.
    fs.fchmodSync(fd, 0o600)
  } finally {
    fs.closeSync(fd)
  }
}

/** Keys sort bytewise; the first string greater than every string that starts with `prefix`. */
function prefixEnd(prefix: string): string | undefined {
  if (prefix === '') return undefined
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)
}

export class SqliteStorage implements Storage {
  readonly #file: string
  readonly #db: Database.Database
  readonly #get: Database.Statement<[string], Buffer>
  readonly #probe: Database.Statement<[string, string], { value: Buffer | null; next: string | null }>
  readonly #put: Database.Statement<[string, Uint8Array]>
  readonly #delete: Database.Statement<[string]>
  readonly #deleteRange: Database.Statement<[string, string]>
  readonly #deleteAll: Database.Statement<[]>
  /**
   * Key scans by page size, the LIMIT written into each: SQLite plans a statement again at every
   * run when its LIMIT is a bound parameter (it plans with the value), and that cost more than the scan.
   */
  readonly #scans = new Map<number, Scan>()
  readonly #maxSlice: Database.Statement<[number, number, string, string], Buffer | null>
  readonly #maxSliceOpen: Database.Statement<[number, number], Buffer | null>
  readonly #page: Database.Statement<[string], { key: string; value: Buffer }>
  readonly #commit: (ops: StorageOp[]) => void
  #queue: Pending[] = []
  #flushScheduled = false
  /** Empties the WAL once writes stop (IDLE_CHECKPOINT_MS after the last commit). */
  readonly #idleCheckpoint: NodeJS.Timeout
  /** Commits since the WAL was last emptied. */
  #commits = 0

  /**
   * Opens (creating if needed, mode 0600) the store file. Holds it exclusively until close. The
   * file, its WAL and its shared-memory file must be regular files of ours, never links: the
   * caller has checked that the directory is ours alone, so they stay what was checked here.
   */
  constructor(file: string) {
    for (const companion of [`${file}-wal`, `${file}-shm`]) {
      let st
      try {
        st = fs.lstatSync(companion)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue
        throw e
      }
      checkStoreFile(companion, st)
    }
    claimStoreFile(file)
    this.#file = file
    this.#db = new Database(file, { timeout: 100 })
    try {
      this.#db.pragma('journal_mode = WAL')
      this.#db.pragma('synchronous = FULL')
      // Freed pages are overwritten with zeros, so a deleted secret's ciphertext doesn't linger. (The
      // WAL keeps older page copies until it is emptied, once writes stop for a moment and at close:
      // emptying it at every reuse as well cost a fifth of the durable write rate, measured.)
      this.#db.pragma('secure_delete = ON')
      this.#db.pragma('locking_mode = EXCLUSIVE')
      this.#db.exec('CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID')
      // Take the exclusive lock now, so that a second daemon on the same file fails at start.
      this.#db.exec('BEGIN EXCLUSIVE; COMMIT')
      syncDirectory(path.dirname(file)) // the new file's and WAL's directory entries, durably
    } catch (e) {
      this.#db.close()
      const code = (e as { code?: string }).code
      if (code === 'SQLITE_BUSY') throw internal('the store is in use by another secretfs process')
      // Opening writes the WAL index (-shm) and may replay the WAL.
      if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_SHMSIZE')
        throw noSpace('cannot open the store: the disk holding it is full; free some space, then start again', {
          cause: e,
        })
      throw e
    }
    this.#get = this.#db.prepare<[string], Buffer>('SELECT value FROM entries WHERE key = ?').pluck()
    // The first key from the prefix on tells whether any begins with it: a bounded seek, no end key.
    this.#probe = this.#db.prepare(
      'SELECT (SELECT value FROM entries WHERE key = ?) AS value, (SELECT key FROM entries WHERE key >= ? ORDER BY key LIMIT 1) AS next',
    )
    this.#put = this.#db.prepare('INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)')
    this.#delete = this.#db.prepare('DELETE FROM entries WHERE key = ?')
    this.#deleteRange = this.#db.prepare('DELETE FROM entries WHERE key >= ? AND key < ?')
    this.#deleteAll = this.#db.prepare('DELETE FROM entries')
    // BLOBs compare bytewise (memcmp), which is what the interface promises.
    this.#maxSlice = this.#db
      .prepare<[number, number, string, string], Buffer | null>(
        'SELECT max(substr(value, ?, ?)) FROM entries WHERE key >= ? AND key < ?',
      )
      .pluck()
    this.#maxSliceOpen = this.#db
      .prepare<[number, number], Buffer | null>('SELECT max(substr(value, ?, ?)) FROM entries')
      .pluck()
    this.#page = this.#db.prepare(`SELECT key, value FROM entries WHERE key > ? ORDER BY key LIMIT ${PAGE}`)
    this.#commit = this.#db.transaction((ops: StorageOp[]) => {
      for (const op of ops) {
        if (op.op === 'put') this.#put.run(op.key, op.value)
        else if (op.op === 'delete') this.#delete.run(op.key)
        else {
          const end = prefixEnd(op.prefix)
          if (end === undefined) this.#deleteAll.run()
          else this.#deleteRange.run(op.prefix, end)
        }
      }
    })
    this.#idleCheckpoint = setTimeout(() => {
      if (!this.#db.open || this.#queue.length > 0) return
      // Failing leaves the WAL as it is, which is safe; the next idle moment tries again.
      try {
        const burst = this.#commits >= BURST_COMMITS
        if (this.#emptyWal() && burst) this.#zeroWal()
      } catch {}
    }, IDLE_CHECKPOINT_MS).unref()
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.#get.get(key)
  }

  async probe(key: string, prefix: string): Promise<Probed> {
    const { value, next } = this.#probe.get(key, prefix)!
    return { value: value ?? undefined, beneath: next !== null && next.startsWith(prefix) }
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.batch([{ op: 'put', key, value }])
  }

  delete(key: string): Promise<void> {
    return this.batch([{ op: 'delete', key }])
  }

  batch(ops: StorageOp[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ops, resolve, reject })
      if (!this.#flushScheduled) {
        this.#flushScheduled = true
        setImmediate(() => this.#flush())
      }
    })
  }

  #flush(): void {
    this.#flushScheduled = false
    const group = this.#queue
    this.#queue = []
    this.#idleCheckpoint.refresh()
    this.#commits++
    try {
      this.#commit(group.flatMap((p) => p.ops))
    } catch (e) {
      // The transaction was rolled back: nothing of the group is stored.
      const error = (e as { code?: string }).code === 'SQLITE_FULL' ? noSpace(undefined, { cause: e }) : e
      for (const p of group) p.reject(error)
      return
    }
    for (const p of group) p.resolve()
  }

  async list(prefix: string, limit = Infinity): Promise<string[]> {
    const end = prefixEnd(prefix)
    // A page is no longer than the caller needs (plus the prefix's own key): a stat asks for one.
    if (!(limit >= 0)) throw invalid('a listing limit is a count')
    const page = Math.min(PAGE, Math.floor(limit) + 1)
    const scan = this.#scan(page)
    const out: string[] = []
    let from = prefix
    // Files come in pages; on reaching a subdirectory, seek past everything beneath it.
    while (out.length < limit) {
      const rows = end === undefined ? scan.open.all(from) : scan.bounded.all(from, end)
      let seek: string | undefined
      for (const { key } of rows) {
        if (key === prefix) continue
        const rest = key.slice(prefix.length)
        const slash = rest.indexOf('/')
        if (slash < 0) {
          out.push(rest)
          continue
        }
        const dir = rest.slice(0, slash + 1)
        out.push(dir)
        seek = prefix + rest.slice(0, slash) + '0' // '0' is the character after '/'
        break
      }
      if (seek !== undefined) from = seek
      else if (rows.length === page) from = rows[rows.length - 1]!.key + '\0'
      else break
    }
    return out.slice(0, limit)
  }

  #scan(page: number): Scan {
    let scan = this.#scans.get(page)
    if (!scan) {
      scan = {
        bounded: this.#db.prepare(`SELECT key FROM entries WHERE key >= ? AND key < ? ORDER BY key LIMIT ${page}`),
        open: this.#db.prepare(`SELECT key FROM entries WHERE key >= ? ORDER BY key LIMIT ${page}`),
      }
      this.#scans.set(page, scan)
    }
    return scan
  }

  async maxValueSlice(prefix: string, offset: number, length: number): Promise<Uint8Array | undefined> {
    const end = prefixEnd(prefix)
    const max =
      end === undefined
        ? this.#maxSliceOpen.get(offset + 1, length)
        : this.#maxSlice.get(offset + 1, length, prefix, end)
    return max ?? undefined
  }

  async *entries(): AsyncIterable<[string, Uint8Array]> {
    // In pages, each a statement of its own: no statement stays open while the caller runs.
    const first = this.#get.get('')
    if (first) yield ['', first]
    for (let after = ''; ;) {
      const rows = this.#page.all(after)
      for (const { key, value } of rows) yield [key, value]
      if (rows.length < PAGE) return
      after = rows[rows.length - 1]!.key
    }
  }

  /**
   * Copies the WAL into the database file and empties it, so that no older copy of a page (a
   * deleted secret's ciphertext) outlives the burst of writes that made it. Returns whether it
   * did; a full disk fails it, and then the WAL keeps every commit and is replayed at the next
   * open, so nothing is lost.
   */
  #emptyWal(): boolean {
    try {
      const [result] = this.#db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[]
      if (result?.busy !== 0) return false
      this.#commits = 0
      return true
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_FULL') throw e
      return false
    }
  }

  /**
   * Writes the WAL that #emptyWal just emptied full of zeros, up to its working size, and syncs
   * it. A commit then overwrites blocks the file has: its fsync writes data alone, not a new size
   * and block map as an append does (here an append's fsync took 425 µs, an overwrite's 370).
   * SQLite starts an emptied WAL with a new header at its first frame, and on opening takes a WAL
   * whose header is not valid (zeros) for empty, so the zeros are never read as frames. Skipped
   * where the disk is short of space; any failure gives the file back its emptiness, always safe.
   */
  #zeroWal(): void {
    const pageSize = this.#db.pragma('page_size', { simple: true }) as number
    const size = 32 + WAL_ZEROED_FRAMES * (24 + pageSize)
    const disk = fs.statfsSync(path.dirname(this.#file))
    if (disk.bavail * disk.bsize < size * WAL_ZEROED_FREE_FACTOR) return
    const fd = fs.openSync(`${this.#file}-wal`, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW)
    try {
      // Only the WAL as the checkpoint left it: empty, and still a file of ours.
      const st = fs.fstatSync(fd)
      if (!st.isFile() || st.size !== 0) return
      const zeros = Buffer.alloc(Math.min(size, 1 << 20))
      for (let at = 0; at < size; at += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, size - at), at)
      fs.fdatasyncSync(fd)
    } catch {
      fs.ftruncateSync(fd, 0)
    } finally {
      fs.closeSync(fd)
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.#idleCheckpoint)
    if (!this.#db.open) return
    if (this.#queue.length > 0) this.#flush()
    this.#emptyWal()
    this.#db.close()
  }
}
