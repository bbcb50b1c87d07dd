// Directories and files that must be ours alone (owned by the user we run as, with no group or
// other permission bits), checked on what was opened rather than on a path looked up again, and
// directories created for us durably. Imports only node:fs and node:path, so that the CLI can load
// it cheaply.

import { constants } from 'node:fs'
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'

export function currentUid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : 0
}

interface Owned {
  uid: number
  mode: number
}

/** Why `st` is not ours, as words that follow its name; undefined when it is ours. */
export function notOwned(st: Owned, options: { rootMayOwn?: boolean } = {}): string | undefined {
  const uid = currentUid()
  if (st.uid === uid || (options.rootMayOwn && st.uid === 0)) return undefined
  return `belongs to another user (uid ${st.uid}), not to you (uid ${uid})`
}

/** Why `st` is open to others, as words that follow its name; undefined when it is not. */
export function openToOthers(st: Owned): string | undefined {
  if ((st.mode & 0o077) === 0) return undefined
  return `is open to other users (mode ${(st.mode & 0o777).toString(8)})`
}

/** A directory that is not ours alone; `reason` reads after its name. */
export class NotPrivate extends Error {
  constructor(
    readonly path: string,
    readonly problem: 'not-directory' | 'owner' | 'mode',
    readonly reason: string,
  ) {
    super(`${path} ${reason}`)
    this.name = 'NotPrivate'
  }
}

/**
 * Opens `dir` and checks, on the open directory, that it is ours alone: no one else can then add,
 * remove or replace what is in it, so a name looked up through the handle
 * (`/proc/self/fd/N/NAME`) is what we checked. Throws NotPrivate, or the error of the open (ENOENT).
 */
export async function openPrivateDir(dir: string): Promise<FileHandle> {
  let handle: FileHandle
  try {
    handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR')
      throw new NotPrivate(dir, 'not-directory', 'is not a directory')
    throw e
  }
  try {
    const st = await handle.stat()
    const owner = notOwned(st)
    if (owner) throw new NotPrivate(dir, 'owner', owner)
    const exposed = openToOthers(st)
    if (exposed) throw new NotPrivate(dir, 'mode', exposed)
    return handle
  } catch (e) {
    await handle.close()
    throw e
  }
}

/** The path by which a name inside an open directory is reached through that directory. */
export const insideHandle = (dir: FileHandle, name: string): string => `/proc/self/fd/${dir.fd}/${name}`

/**
 * Makes sure `dir` exists and is ours alone. A missing one (with any missing parents) is created
 * 0700, and each new entry is made durable in its parent. Throws NotPrivate.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  const absolute = resolve(dir)
  let first: string | undefined
  try {
    first = await mkdir(absolute, { recursive: true, mode: 0o700 })
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    // A file stands where the directory, or one above it, should be.
    if (code === 'EEXIST') throw new NotPrivate(absolute, 'not-directory', 'is not a directory')
    if (code === 'ENOTDIR')
      throw new NotPrivate(absolute, 'not-directory', 'cannot be made: a path above it is not a directory')
    throw e
  }
  if (first !== undefined)
    for (let created = absolute; ; created = dirname(created)) {
      await syncDirectory(dirname(created))
      if (created === first || dirname(created) === created) break
    }
  await (await openPrivateDir(absolute)).close()
}

/** Makes the entries of `dir` (a file just created in it) durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
