// Named errors of the core. Front ends map `kind` to errno values (fs) or HTTP statuses (api),
// each in exactly one place. Messages never carry a secret, a secret's name or a key.

export type ErrorKind =
  | 'invalid' // the caller's input is malformed
  | 'not-found'
  | 'exists'
  | 'reserved' // a reserved mount path
  | 'unsupported' // the backend does not do that operation, or that path
  | 'read-only'
  | 'not-dir'
  | 'is-dir'
  | 'not-empty'
  | 'too-large'
  | 'cross-mount' // an operation that would span two mounts
  | 'sealed'
  | 'integrity' // a ciphertext failed authentication
  | 'unseal-failed' // a wrong passphrase or key file
  | 'busy' // an unmount or remount whose revocation or deletion failed
  | 'no-space' // the disk holding the store is full: nothing was written
  | 'upstream' // a service a backend relies on (AWS, a database) failed, refused or timed out
  | 'unavailable' // the store itself (a PostgreSQL server) cannot be reached or did not answer in time
  | 'internal'

export class SecretfsError extends Error {
  readonly kind: ErrorKind
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    // Only an internal error keeps a stack, for a bug report. The others are answers (most lookups
    // of a new name end in not-found), never logged with one, and capturing it cost more than the
    // store read that found nothing.
    const limit = Error.stackTraceLimit
    if (kind !== 'internal') Error.stackTraceLimit = 0
    super(message, options)
    Error.stackTraceLimit = limit
    this.kind = kind
    this.name = 'SecretfsError'
  }
}

const make =
  (kind: ErrorKind, fallback: string) =>
  (message: string = fallback, options?: { cause?: unknown }) =>
    new SecretfsError(kind, message, options)

export const invalid = make('invalid', 'invalid request')
export const notFound = make('not-found', 'no such secret or directory')
export const exists = make('exists', 'already exists')
export const reserved = make('reserved', 'that path is reserved')
export const unsupported = make('unsupported', 'operation not supported here')
export const readOnly = make('read-only', 'read-only')
export const notDir = make('not-dir', 'not a directory')
export const isDir = make('is-dir', 'is a directory')
export const notEmpty = make('not-empty', 'directory not empty')
export const tooLarge = make('too-large', 'value too large')
export const crossMount = make('cross-mount', 'cannot span two mounts')
export const sealed = make('sealed', 'secretfs is sealed')
export const integrity = make('integrity', 'integrity check failed: stored data was altered or moved')
export const unsealFailed = make('unseal-failed', 'the passphrase or key does not unlock this store')
export const busy = make('busy', 'resource busy')
export const noSpace = make('no-space', 'the disk holding the store is full; nothing was written')
export const upstream = make('upstream', 'a service the backend relies on failed')
export const unavailable = make('unavailable', 'the store cannot be reached')
export const internal = make('internal', 'internal error')

export const isKind = (e: unknown, kind: ErrorKind): e is SecretfsError => e instanceof SecretfsError && e.kind === kind
