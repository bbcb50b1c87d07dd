// A ceiling on the decrypted content the filesystem holds for open files, so that opening many
// large secrets fails with ENOMEM instead of growing the daemon until the OOM killer ends it.

import { FsError } from './errno.js'

/** Bytes of decrypted content held for open files at once. */
export const MAX_OPEN_BYTES = 256 << 20

export class MemoryBudget {
  readonly limit: number
  #used = 0

  constructor(limit = MAX_OPEN_BYTES) {
    this.limit = limit
  }

  get used(): number {
    return this.#used
  }

  /** Takes `bytes` from the budget, or throws ENOMEM and takes nothing. */
  take(bytes: number): void {
    if (this.#used + bytes > this.limit)
      throw new FsError('ENOMEM', 'open files hold as much decrypted content as the daemon allows')
    this.#used += bytes
  }

  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes)
  }
}
