// From the kernel's paths ('/secret/team/db') to the core's ('secret/team/db'), and the names
// that desktop helpers and tools probe for at the root, answered without asking the core.

import { checkName } from '../core/paths.js'

export interface FsPath {
  /** '' for the root, else the core's path: 'secret' for a mount, 'secret/a/b' within it. */
  logical: string
  /** The mount's name ('' at the root). */
  mount: string
  /** True for a mount itself (a directory at the root). */
  atTop: boolean
}

export function parseFsPath(fusePath: string): FsPath {
  const logical = fusePath.startsWith('/') ? fusePath.slice(1) : fusePath
  if (logical === '') return { logical, mount: '', atTop: false }
  const slash = logical.indexOf('/')
  if (slash < 0) return { logical, mount: logical, atTop: true }
  return { logical, mount: logical.slice(0, slash), atTop: false }
}

/** The directory that holds `logical` ('' for a mount at the root) and the last name. */
export function parentOf(logical: string): { parent: string; name: string } {
  const slash = logical.lastIndexOf('/')
  return slash < 0 ? { parent: '', name: logical } : { parent: logical.slice(0, slash), name: logical.slice(slash + 1) }
}

/**
 * A name at the root that can never be a mount, answered ENOENT without asking the core: every
 * mount name beginning with '.' is reserved (.Trash, .Trash-0, .hidden, .git, .xdg-volume-info).
 * Other probed names (autorun.inf) miss in the in-memory mount table, which costs no storage.
 */
export function isProbeAtRoot(name: string): boolean {
  return name.startsWith('.')
}

export { checkName }
