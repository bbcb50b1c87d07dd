// A tap matcher for a core error of one kind (and, optionally, a message).
import type { ErrorKind } from '../../src/errors.js'

export const kind = (k: ErrorKind, message?: RegExp) => ({
  name: 'SecretfsError',
  kind: k,
  ...(message && { message }),
})
