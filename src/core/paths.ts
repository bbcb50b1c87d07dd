// Logical paths as users give them: 'secret/team/db' is the mount 'secret/' and, within it, the
// path 'team/db'. Every component is checked here, once, before anything reaches a backend.

import { invalid, reserved } from '../errors.js'

const MAX_NAME_BYTES = 255

/** Throws unless `name` can be one component of a path. */
export function checkName(name: string): void {
  if (name === '') throw invalid('a path has an empty component')
  if (name === '.' || name === '..') throw invalid("a path cannot contain '.' or '..'")
  if (name.includes('\0')) throw invalid('a path cannot contain a NUL byte')
  if (/[\x01-\x1f\x7f]/.test(name)) throw invalid('a path cannot contain control characters')
  if (name.includes('/')) throw invalid("a name cannot contain '/'")
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw invalid(`a name is limited to ${MAX_NAME_BYTES} bytes`)
}

/**
 * Splits 'mount/rest/of/path' into the mount ('mount/') and the path within it ('rest/of/path',
 * or '' for the mount itself). A trailing '/' is allowed.
 */
export function splitPath(path: string): { mount: string; rest: string } {
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path
  if (trimmed === '' || trimmed.startsWith('/')) throw invalid('a path must start with a mount, such as secret/')
  const parts = trimmed.split('/')
  for (const p of parts) checkName(p)
  return { mount: parts[0] + '/', rest: parts.slice(1).join('/') }
}

/** 'secret' or 'secret/' → 'secret/'. Throws for a malformed or reserved mount path. */
export function normalizeMountPath(path: string): string {
  const name = path.endsWith('/') ? path.slice(0, -1) : path
  if (name === '') throw invalid('a mount path cannot be empty')
  if (name.includes('/')) throw invalid('a mount path is one name, such as secret/, without further slashes')
  checkName(name)
  return name + '/'
}

/** Paths that only the system owns: sys/ and any name beginning with '.'. */
export function isReservedMount(mountPath: string): boolean {
  return mountPath === 'sys/' || mountPath.startsWith('.')
}

export function checkMountable(mountPath: string): void {
  if (isReservedMount(mountPath)) throw reserved('that mount path is reserved')
}

/** The parent directory of a path within a mount ('' at the top) and its last name. */
export function parentOf(path: string): { parent: string; name: string } {
  const slash = path.lastIndexOf('/')
  return slash < 0 ? { parent: '', name: path } : { parent: path.slice(0, slash), name: path.slice(slash + 1) }
}
