// A test backend type whose one file, `creds`, is generated (like aws credentials): every read
// mints new content with a lease (the JSON field `secret`), and the backend counts what it minted
// and revoked.
import type { BackendFactory, EntryInfo } from '../../src/backends/backend.js'
import { notDir, notFound } from '../../src/errors.js'

export interface CountingState {
  mints: number
  revoked: number
  /** Makes revoke fail, as an unreachable cloud API would. */
  failRevoke: boolean
}

/** The content of the n-th mint: about 260 kB, more than one read request carries. */
export const minted = (n: number): string => `credential ${n}\n`.repeat(20_000)

export function countingBackend(): { state: CountingState; factory: BackendFactory } {
  const state: CountingState = { mints: 0, revoked: 0, failRevoke: false }
  const t0 = new Date()
  const factory: BackendFactory = () => ({
    async stat(p): Promise<EntryInfo | undefined> {
      if (p === '') return { kind: 'dir', size: 0, created: t0, modified: t0 }
      if (p === 'creds')
        return { kind: 'file', size: 1 << 20, created: t0, modified: t0, generated: true, readOnly: true }
      return undefined
    },
    async read(p) {
      if (p !== 'creds') throw notFound()
      const n = ++state.mints
      return {
        value: Buffer.from(JSON.stringify({ secret: minted(n) })),
        created: t0,
        modified: new Date(),
        lease: { ttl: 3600, maxTtl: 0, renewable: true, data: { n } },
      }
    },
    async list(p) {
      if (p === '') return ['creds']
      if (p === 'creds') throw notDir()
      throw notFound()
    },
    async revoke() {
      if (state.failRevoke) throw new Error('the cloud API is unreachable')
      state.revoked++
    },
  })
  return { state, factory }
}
