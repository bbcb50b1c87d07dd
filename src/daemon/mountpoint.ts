// Gets the mountpoint ready: clears a dead mount left by a crashed daemon ("Transport endpoint is
// not connected"), creates a missing directory (0700), and refuses one that is in use or holds
// files. A mountpoint is known by its real path, as /proc/mounts lists it, even when named through
// a symbolic link. Everything here is asynchronous: a dead FUSE mount can block a synchronous call.

import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import type { Logger } from '../log.js'
import { DaemonError } from './daemon-error.js'

const run = promisify(execFile)

/** Mountpoints listed in /proc/mounts, with their filesystem types. */
export async function listMounts(): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const text = await fs.readFile('/proc/mounts', 'utf8')
  for (const line of text.split('\n')) {
    const fields = line.split(' ')
    if (fields.length < 3) continue
    // The kernel escapes space, tab, newline and backslash as octal (\040).
    out.set(
      fields[1]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))),
      fields[2]!,
    )
  }
  return out
}

/**
 * `dir` with every symbolic link resolved, as realpath gives it, except that a last component
 * that cannot be looked at (missing, or a dead mount: stat fails with ENOTCONN) is kept as named.
 * Links are followed with lstat and readlink, which never ask the filesystem mounted there.
 */
export async function realPath(dir: string, hops = 0): Promise<string> {
  const absolute = path.resolve(dir)
  const parent = path.dirname(absolute)
  if (parent === absolute) return absolute
  const here = path.join(await realPath(parent, hops), path.basename(absolute))
  let link
  try {
    if (!(await fs.lstat(here)).isSymbolicLink()) return here
    link = await fs.readlink(here)
  } catch {
    return here
  }
  if (hops >= 40) throw new DaemonError(`${dir}: too many levels of symbolic links`)
  return realPath(path.resolve(path.dirname(here), link), hops + 1)
}

export async function isMounted(dir: string): Promise<boolean> {
  return (await listMounts()).has(await realPath(dir))
}

/** Detaches a FUSE mount, even a dead or busy one (lazy unmount). */
export async function forceUnmount(dir: string): Promise<void> {
  await run('fusermount', ['-uz', await realPath(dir)])
}

/** Prepares `dir` for mounting; returns its real path. */
export async function prepareMountpoint(dir: string, log: Logger): Promise<string> {
  const mountpoint = await realPath(dir)
  const type = (await listMounts()).get(mountpoint)
  if (type !== undefined) {
    let dead = false
    try {
      // statfs always asks the filesystem; a stat of the root may be answered from the kernel's
      // attribute cache for a while after the daemon died.
      await fs.statfs(mountpoint)
    } catch (e) {
      dead = (e as NodeJS.ErrnoException).code === 'ENOTCONN'
      if (!dead) throw e
    }
    if (!dead)
      throw new DaemonError(
        `${mountpoint} is already a mountpoint (${type}); is another secretfs running there? Unmount it or choose another directory`,
      )
    await forceUnmount(mountpoint).catch((e: unknown) => {
      throw new DaemonError(
        `${mountpoint} is a dead mount left by a crash and could not be cleared; run fusermount -uz on it`,
        { cause: e },
      )
    })
    log.info('cleared a dead mount left at the mountpoint by an earlier daemon')
  }
  let stat
  try {
    stat = await fs.stat(mountpoint)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
    await fs.mkdir(mountpoint, { recursive: true, mode: 0o700 })
    log.info('created the mountpoint')
    return mountpoint
  }
  if (!stat.isDirectory())
    throw new DaemonError(`${mountpoint} is not a directory; the mountpoint must be an empty directory`)
  const entries = await fs.readdir(mountpoint)
  if (entries.length > 0)
    throw new DaemonError(
      `${mountpoint} is not empty (it holds ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}); secretfs mounts only on an empty directory, so that nothing is hidden under the mount`,
    )
  return mountpoint
}
