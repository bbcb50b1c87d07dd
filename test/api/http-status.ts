// The one mapping from errors to HTTP statuses, seen through the API's request handler: every
// error kind's status and body, and which of them the daemon logs.
import t from 'tap'
import { ApiHandler } from '../../src/api/api-handler.js'
import type { Core } from '../../src/core/core.js'
import * as errors from '../../src/errors.js'
import { captureLog } from '../helpers/capture-log.js'

/**
 * Every core error kind: its status, and whether the operator is told (a failure of ours or of the
 * disk) or not (the caller's own mistake, which the answer tells). A Record, so that a new kind
 * cannot be added without deciding both here.
 */
const EXPECTED: Record<errors.ErrorKind, [status: number, logged: boolean]> = {
  invalid: [400, false],
  'not-found': [404, false],
  exists: [409, false],
  reserved: [400, false],
  unsupported: [405, false],
  'read-only': [405, false],
  'not-dir': [400, false],
  'is-dir': [400, false],
  'not-empty': [409, false],
  'too-large': [413, false],
  'cross-mount': [400, false],
  sealed: [503, false],
  integrity: [500, true],
  'unseal-failed': [400, false],
  busy: [500, true],
  'no-space': [507, true],
  upstream: [502, true],
  unavailable: [503, true],
  internal: [500, true],
}

/** A handler over a core whose every read fails with `error`. */
function failingWith(error: unknown) {
  const log = captureLog()
  const core = {
    read: async () => {
      throw error
    },
  }
  const handler = new ApiHandler(core as unknown as Core, log)
  const get = () => handler.handle({ method: 'GET', target: '/v1/secret/a', body: Buffer.alloc(0) })
  return { log, get }
}

t.test(
  "every error kind answers its status with its message, and is logged unless it is the caller's doing",
  async (t) => {
    for (const [kind, [status, logged]] of Object.entries(EXPECTED) as [errors.ErrorKind, [number, boolean]][]) {
      const { log, get } = failingWith(new errors.SecretfsError(kind, `a ${kind} failure`))
      t.same(await get(), { status, body: { errors: [`a ${kind} failure`] } }, `${kind}: status and body`)
      t.same(
        log.lines,
        logged ? [`[error] api: GET request failed with ${status}: ${kind}: a ${kind} failure`] : [],
        `${kind}: log`,
      )
    }
  },
)

t.test('a foreign error is a bare 500 that quotes nothing, and is logged by its code only', async (t) => {
  const { log, get } = failingWith(Object.assign(new Error('EIO: i/o error, read /secret/a'), { code: 'EIO' }))
  t.same(await get(), { status: 500, body: { errors: ['internal error'] } })
  t.same(log.lines, ['[error] api: GET request failed with 500: Error EIO'])
})
