// The one mapping from errors to errno values, and what it logs.
import t from 'tap'
import os from 'node:os'
import * as errors from '../../src/errors.js'
import { badHandle, FsError, staleName, toErrno } from '../../src/fs/errno.js'
import { captureLog } from '../helpers/capture-log.js'

const E = os.constants.errno

/**
 * Every core error kind: its errno, and whether the operator is told (a failure of ours or of the
 * disk) or not (the caller's own mistake, which the caller sees). A Record, so that a new kind
 * cannot be added without deciding both here.
 */
const EXPECTED: Record<errors.ErrorKind, [errno: number, logged: boolean]> = {
  invalid: [E.EINVAL, false],
  'not-found': [E.ENOENT, false],
  exists: [E.EEXIST, false],
  reserved: [E.EPERM, false],
  unsupported: [E.EPERM, false],
  'read-only': [E.EACCES, false],
  'not-dir': [E.ENOTDIR, false],
  'is-dir': [E.EISDIR, false],
  'not-empty': [E.ENOTEMPTY, false],
  'too-large': [E.EFBIG, false],
  'cross-mount': [E.EXDEV, false],
  sealed: [E.EACCES, false],
  integrity: [E.EIO, true],
  'unseal-failed': [E.EACCES, false],
  busy: [E.EBUSY, true],
  'no-space': [E.ENOSPC, true],
  upstream: [E.EIO, true],
  unavailable: [E.EIO, true],
  internal: [E.EIO, true],
}

t.test(
  "every core error kind maps to the errno tools expect, and is logged unless it is the caller's doing",
  async (t) => {
    for (const [kind, [errno, logged]] of Object.entries(EXPECTED) as [errors.ErrorKind, [number, boolean]][]) {
      const log = captureLog()
      t.equal(toErrno(new errors.SecretfsError(kind, `a ${kind} failure`), log), -errno, `${kind}: errno`)
      t.same(
        log.lines,
        logged ? [`[error] a filesystem request failed: ${kind}: a ${kind} failure`] : [],
        `${kind}: log`,
      )
    }
  },
)

t.test('filesystem-only errors and foreign errors', async (t) => {
  const log = captureLog()
  t.equal(toErrno(badHandle(), log), -E.EBADF)
  t.equal(toErrno(staleName(), log), -E.ESTALE)
  t.same(log.lines, [], "the kernel's own conditions are not logged")
  t.equal(toErrno(new FsError('ENFILE', 'too many open files'), log), -E.ENFILE)
  t.equal(toErrno(new FsError('ENOMEM', 'too much decrypted'), log), -E.ENOMEM)
  t.same(log.lines, [
    '[warn] a filesystem request was refused: too many open files',
    '[warn] a filesystem request was refused: too much decrypted',
  ])
  t.equal(toErrno(new TypeError('x is not a function'), log), -E.EIO)
  t.equal(log.lines.length, 3, 'an unexpected error is logged')
  t.match(log.lines[2], /^\[error\] a filesystem request failed unexpectedly/)
})

t.test('a foreign error is logged without its message, which may quote a path', async (t) => {
  const log = captureLog()
  const foreign = Object.assign(new Error('ENOSPC: no space left, write /secret/path'), { code: 'ENOSPC' })
  t.equal(toErrno(foreign, log), -E.EIO)
  t.equal(log.lines.length, 1)
  t.match(log.lines[0], /Error ENOSPC/)
  t.notMatch(log.lines[0], /secret\/path/)
})
