// Loads a FUSE binding only after checking what it needs from the system, so that a missing piece
// is named, with the command that installs it, instead of surfacing as a loader error:
// - lowlevel, secretfs's own binding on libfuse 3's low-level API (the default): its addon links
//   against libfuse3.so.3 (Debian: libfuse3-3, with fuse3), which runs fusermount3 to mount
//   unless the daemon is root;
// - fuse-native (--fuse fuse-native), on libfuse 2's high-level API: its addon links against
//   libfuse.so.2 (Debian: libfuse2) and its unmount runs fusermount (Debian: fuse, or fuse3's
//   link to fusermount3). It is the way to macOS, which the low-level binding does not cover.

import { access, constants } from 'node:fs/promises'
import path from 'node:path'
import { mountFs, type FuseBinding, type FuseBindingName } from '../fs/fuse-mount.js'
import { mountLowLevel } from '../fs/lowlevel-mount.js'
import { loadFuseLowLevel } from '../native/fuse-lowlevel.js'
import { DaemonError } from './daemon-error.js'

export const FUSE_BINDINGS: readonly FuseBindingName[] = ['lowlevel', 'fuse-native']

/** The first executable called `name` on PATH. */
export async function findOnPath(name: string, searchPath = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue
    const candidate = path.join(dir, name)
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return undefined
}

/** What the user should read when loading a binding's addon failed with `error`. */
export function explainLoadError(error: unknown, binding: FuseBindingName = 'fuse-native'): string {
  const message = error instanceof Error ? error.message : String(error)
  if (/libfuse\.so\.2/.test(message))
    return `libfuse.so.2 (the FUSE 2 library) is missing. Install it: apt-get install libfuse2 (Debian/Ubuntu)`
  if (/libfuse3\.so\.3/.test(message))
    return `libfuse3.so.3 (the FUSE 3 library) is missing. Install it: apt-get install fuse3 libfuse3-3 (Debian/Ubuntu), or run with --fuse fuse-native`
  if (binding === 'lowlevel' && /secretfs_fuse\.node|Cannot find module/.test(message))
    return `secretfs's FUSE addon is not built (it needs libfuse3-dev when npm ci runs: apt-get install libfuse3-dev, then npm ci), or run with --fuse fuse-native`
  return `the FUSE addon (${binding}) could not be loaded: ${message.split('\n')[0]}`
}

export async function loadFuse(
  binding: FuseBindingName = 'lowlevel',
  searchPath?: string,
  isRoot = process.getuid?.() === 0,
): Promise<FuseBinding> {
  if (binding === 'lowlevel') {
    if (!isRoot && !(await findOnPath('fusermount3', searchPath)))
      throw new DaemonError(
        'fusermount3 is missing (secretfs needs it to mount without root). Install it: apt-get install fuse3 (Debian/Ubuntu)',
      )
    let fuse
    try {
      fuse = loadFuseLowLevel()
    } catch (e) {
      throw new DaemonError(explainLoadError(e, binding), { cause: e })
    }
    return { name: binding, mount: (mountpoint, fs, log) => mountLowLevel(fuse, mountpoint, fs, log) }
  }
  if (!(await findOnPath('fusermount', searchPath)))
    throw new DaemonError(
      'fusermount is missing (secretfs needs it to unmount). Install it: apt-get install fuse3 (Debian/Ubuntu; or fuse)',
    )
  try {
    const Fuse = (await import('fuse-native')).default
    return { name: binding, mount: (mountpoint, fs) => mountFs(Fuse, mountpoint, fs) }
  } catch (e) {
    throw new DaemonError(explainLoadError(e, binding), { cause: e })
  }
}
