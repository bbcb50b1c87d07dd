// Loads fuse-native only after checking what it needs from the system: its addon links against
// libfuse.so.2 (Debian: libfuse2) and its unmount runs fusermount (Debian: fuse). A missing piece
// is named, with the command that installs it, instead of surfacing as a loader error.

import { access, constants } from 'node:fs/promises'
import path from 'node:path'
import type { Fuse } from '../fs/fuse-mount.js'
import { DaemonError } from './daemon-error.js'

export const INSTALL_HINT = 'apt-get install libfuse2 fuse'

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

/** What the user should read when loading the addon failed with `error`. */
export function explainLoadError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  if (/libfuse\.so\.2/.test(message))
    return `libfuse.so.2 (the FUSE 2 library) is missing. Install it: apt-get install libfuse2 (Debian/Ubuntu)`
  return `the FUSE addon (fuse-native) could not be loaded: ${message.split('\n')[0]}`
}

export async function loadFuse(searchPath?: string): Promise<Fuse> {
  if (!(await findOnPath('fusermount', searchPath)))
    throw new DaemonError(
      'fusermount is missing (secretfs needs it to unmount). Install it: apt-get install fuse (Debian/Ubuntu)',
    )
  try {
    return (await import('fuse-native')).default
  } catch (e) {
    throw new DaemonError(explainLoadError(e), { cause: e })
  }
}
