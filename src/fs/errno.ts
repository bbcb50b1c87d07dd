// The one place where errors become errno values for the kernel. Handlers throw SecretfsErrors
// (from the core, or made here for FUSE-only refusals) and never pick an errno themselves.

import os from 'node:os'
import { SecretfsError, type ErrorKind } from '../errors.js'
import type { Logger } from '../log.js'

const E = os.constants.errno

const byKind: Record<ErrorKind, number> = {
  invalid: E.EINVAL,
  'not-found': E.ENOENT,
  exists: E.EEXIST,
  reserved: E.EPERM,
  // Symlinks, hard links, device nodes, files at the root: "Operation not permitted".
  unsupported: E.EPERM,
  // A read-only file (sys/) is refused like a file without write permission.
  'read-only': E.EACCES,
  'not-dir': E.ENOTDIR,
  'is-dir': E.EISDIR,
  'not-empty': E.ENOTEMPTY,
  'too-large': E.EFBIG,
  // mv sees EXDEV and falls back to copy and delete.
  'cross-mount': E.EXDEV,
  sealed: E.EACCES,
  integrity: E.EIO,
  'unseal-failed': E.EACCES,
  busy: E.EBUSY,
  'no-space': E.ENOSPC,
  upstream: E.EIO,
  unavailable: E.EIO,
  internal: E.EIO,
}

/** Errors that are not the caller's doing, and so go to the log. */
const logged = new Set<ErrorKind>(['integrity', 'internal', 'busy', 'no-space', 'upstream', 'unavailable'])

/** Conditions only the filesystem has, with no core error kind. */
export class FsError extends Error {
  constructor(
    readonly errno: 'EBADF' | 'ESTALE' | 'ENFILE' | 'ENOMEM' | 'EILSEQ',
    message: string,
  ) {
    super(message)
  }
}

/** A handle number the kernel should never have sent. */
export const badHandle = (): FsError => new FsError('EBADF', 'no such open file')

/**
 * The kernel opened a name it still had cached, but the core no longer has it (it was deleted or
 * moved through the control API). ESTALE makes the kernel look the name up afresh and retry the
 * open once: then `echo x > name` creates the file and `cat name` says ENOENT.
 */
export const staleName = (): FsError => new FsError('ESTALE', 'the name is no longer there')

/** A name that is not UTF-8: it cannot be told apart from others (see SecretFs.operations). */
export const undecodableName = (): FsError => new FsError('EILSEQ', 'a name must be UTF-8')

/** The negative errno for `error`, as fuse-native expects. Logs what the operator must see. */
export function toErrno(error: unknown, log: Logger): number {
  if (error instanceof FsError) {
    // Limits the daemon enforces are worth the operator's attention; the others are the kernel's.
    if (error.errno === 'ENFILE' || error.errno === 'ENOMEM')
      log.warn(`a filesystem request was refused: ${error.message}`)
    return -E[error.errno]
  }
  if (error instanceof SecretfsError) {
    if (logged.has(error.kind)) log.error('a filesystem request failed', error)
    return -byKind[error.kind]
  }
  log.error('a filesystem request failed unexpectedly', error)
  return -E.EIO
}
