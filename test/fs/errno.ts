// The one mapping from errors to errno values, and what it logs.
import t from 'tap'
import os from 'node:os'
import * as errors from '../../src/errors.js'
import { badHandle, staleName, toErrno } from '../../src/fs/errno.js'
import { captureLog } from '../helpers/capture-log.js'

const E = os.constants.errno

t.test('core error kinds map to the errno values tools expect', async (t) => {
  const log = captureLog()
  const cases: [errors.SecretfsError, number][] = [
    [errors.notFound(), E.ENOENT],
    [errors.exists(), E.EEXIST],
    [errors.reserved(), E.EPERM],
    [errors.unsupported(), E.EPERM],
    [errors.readOnly(), E.EACCES],
    [errors.notDir(), E.ENOTDIR],
    [errors.isDir(), E.EISDIR],
    [errors.notEmpty(), E.ENOTEMPTY],
    [errors.tooLarge(), E.EFBIG],
    [errors.crossMount(), E.EXDEV],
    [errors.sealed(), E.EACCES],
    [errors.integrity(), E.EIO],
    [errors.busy(), E.EBUSY],
    [errors.noSpace(), E.ENOSPC],
    [errors.invalid(), E.EINVAL],
    [errors.internal(), E.EIO],
  ]
  for (const [error, errno] of cases) t.equal(toErrno(error, log), -errno, error.kind)
  t.equal(toErrno(badHandle(), log), -E.EBADF)
  t.equal(toErrno(staleName(), log), -E.ESTALE)
  t.equal(toErrno(new TypeError('x is not a function'), log), -E.EIO)
})

t.test("failures the operator must see are logged; the caller's mistakes are not", async (t) => {
  const log = captureLog()
  toErrno(errors.notFound(), log)
  toErrno(errors.exists(), log)
  t.same(log.lines, [])
  toErrno(errors.integrity(), log)
  toErrno(errors.busy('revoking a lease of the mount failed'), log)
  const foreign = Object.assign(new Error('ENOSPC: no space left, write /secret/path'), { code: 'ENOSPC' })
  toErrno(foreign, log)
  t.equal(log.lines.length, 3)
  t.match(log.lines[0], /integrity/)
  t.match(log.lines[1], /busy: revoking a lease/)
  t.match(log.lines[2], /Error ENOSPC/)
  t.notMatch(log.lines[2], /secret\/path/, 'a foreign message, which may quote a path, is not logged')
})
