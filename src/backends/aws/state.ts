// What the aws backend's paths share: its storage view and its AWS clients, built from
// config/root as it is now.

import type { StorageView } from '../../barrier/barrier.js'
import { AwsClients, type AwsTimeouts } from './client.js'
import { EMPTY_ROOT, readRootConfig } from './path-config-root.js'

export class AwsState {
  readonly storage: StorageView
  readonly #timeouts: AwsTimeouts
  #cached?: { modified: number; clients: AwsClients }

  constructor(storage: StorageView, timeouts: AwsTimeouts) {
    this.storage = storage
    this.#timeouts = timeouts
  }

  /** The clients for config/root as it is now (rebuilt when it has changed). */
  async clients(): Promise<AwsClients> {
    const entry = await readRootConfig(this.storage)
    const modified = entry?.modified.getTime() ?? 0
    if (this.#cached?.modified !== modified) {
      this.configChanged()
      this.#cached = { modified, clients: new AwsClients(entry?.data ?? EMPTY_ROOT, this.#timeouts) }
    }
    return this.#cached.clients
  }

  /** Drops the clients, so the next call builds them from the new config/root. */
  configChanged(): void {
    this.#cached?.clients.destroy()
    this.#cached = undefined
  }
}
