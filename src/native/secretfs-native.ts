// The secretfs_native addon, typed: what secretfs needs of the system that Node offers no way to
// do, in C (src/native/*.c), built into build/Release by node-gyp when `npm ci` installs secretfs.

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export interface SecretfsNative {
  /**
   * Sets RLIMIT_CORE to 0 and PR_SET_DUMPABLE to 0: no core file is written, and the kernel refuses
   * other processes of the same user ptrace and /proc/PID/mem, environ and maps.
   */
  makeNonDumpable(): void
  /** Whether this process can still be dumped, or traced by its own user (PR_GET_DUMPABLE). */
  dumpable(): boolean
  /** glibc zeroes every heap chunk freed from now on (mallopt M_PERTURB). */
  zeroFreedMemory(): void
}

export const ADDON_PATH = path.join('build', 'Release', 'secretfs_native.node')

let loaded: SecretfsNative | undefined

/** The addon, from secretfs's top directory (found above this file, from the source or the build). */
export function loadNative(): SecretfsNative {
  return (loaded ??= createRequire(import.meta.url)(path.join(packageRoot(), ADDON_PATH)) as SecretfsNative)
}

export function packageRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'secretfs')
        return dir
    } catch {}
    if (path.dirname(dir) === dir) throw new Error(`secretfs's package.json was not found above ${import.meta.url}`)
  }
}
