// Stands in for a mount whose backend type this build does not have (the store was written by a
// build that had it). The mount stays listed and its data untouched; every request is refused.

import { unsupported } from '../errors.js'
import type { Backend, EntryInfo, Lease, ReadResult } from './backend.js'

export class UnavailableBackend implements Backend {
  readonly #message: string

  constructor(type: string) {
    this.#message = `this mount's backend type (${JSON.stringify(type.slice(0, 64))}) is not in this build of secretfs; it is kept unchanged`
  }

  async stat(path: string): Promise<EntryInfo | undefined> {
    // The mount itself still shows as a (read-only) directory; nothing inside it does.
    if (path === '') return { kind: 'dir', size: 0, created: new Date(0), modified: new Date(0), readOnly: true }
    throw this.#refuse()
  }

  async read(): Promise<ReadResult> {
    throw this.#refuse()
  }

  async list(): Promise<string[]> {
    throw this.#refuse()
  }

  async write(): Promise<void> {
    throw this.#refuse()
  }

  async delete(): Promise<void> {
    throw this.#refuse()
  }

  async mkdir(): Promise<void> {
    throw this.#refuse()
  }

  async rmdir(): Promise<void> {
    throw this.#refuse()
  }

  async rename(): Promise<void> {
    throw this.#refuse()
  }

  /** Its leases cannot be revoked without the backend, so an unmount that has any stops. */
  async revoke(_lease: Lease): Promise<void> {
    throw this.#refuse()
  }

  #refuse(): Error {
    return unsupported(this.#message)
  }
}
