// The one place where errors become HTTP statuses and the {"errors": [...]} body.

import { SecretfsError, type ErrorKind } from '../errors.js'

const STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  'not-found': 404,
  exists: 409,
  reserved: 400,
  unsupported: 405,
  'read-only': 405,
  'not-dir': 400,
  'is-dir': 400,
  'not-empty': 409,
  'too-large': 413,
  'cross-mount': 400,
  sealed: 503,
  integrity: 500,
  'unseal-failed': 400,
  busy: 500,
  // Vault answers a full disk with a 500; 507 says what happened.
  'no-space': 507,
  // The backend's service (AWS, a database) failed or did not answer in time.
  upstream: 502,
  // The store is down (a PostgreSQL server restarting): try again later, as Vault answers.
  unavailable: 503,
  internal: 500,
}

export interface ErrorResponse {
  status: number
  message: string
  /** A failure of ours rather than of the request: worth a log line. */
  internal: boolean
}

/** The status and message for an error; foreign errors become a bare 500 that quotes nothing. */
export function errorResponse(error: unknown): ErrorResponse {
  if (error instanceof SecretfsError) {
    const status = STATUS[error.kind]
    // A sealed daemon is the operator's choice; a store that cannot be reached is worth a line.
    return { status, message: error.message, internal: status >= 500 && error.kind !== 'sealed' }
  }
  return { status: 500, message: 'internal error', internal: true }
}
