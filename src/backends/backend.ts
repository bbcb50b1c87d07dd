// The contract between the core and a secret backend. Paths are relative to the mount: '' is the
// mount itself, 'team/db' a secret within it. A backend sees only its own storage view.

import type { StorageView } from '../barrier/barrier.js'
import type { MountEntry } from '../core/mount-table.js'

export interface EntryInfo {
  kind: 'file' | 'dir'
  /** Bytes of content; for generated content, an upper bound. */
  size: number
  created: Date
  modified: Date
  /** Content made afresh on each read (credentials): read it once per open, never to stat. */
  generated?: boolean
  /** Refuses writes. */
  readOnly?: boolean
}

/** What a read returns; a secret that must be revoked later carries a lease. */
export interface ReadResult {
  /** Decrypted: the caller owns it, and zeroes it when done. */
  value: Uint8Array
  created: Date
  modified: Date
  lease?: { ttl: number; data: LeaseData }
  /** Made afresh by this read (as EntryInfo.generated): each open of it gets its own copy. */
  generated?: boolean
  /** Refuses writes (as EntryInfo.readOnly). */
  readOnly?: boolean
}

export type LeaseData = Record<string, unknown>

export interface Lease {
  id: string
  /** The path within the mount that was read. */
  path: string
  issued: Date
  expires: Date
  data: LeaseData
}

export interface BackendContext {
  storage: StorageView
  /** The mount's table entry, as it is now (its path changes on remount). */
  mount(): Readonly<MountEntry>
  /** The largest value a write may store, in bytes. */
  maxValueSize: number
}

export interface Backend {
  stat(path: string): Promise<EntryInfo | undefined>
  read(path: string): Promise<ReadResult>
  /** Names in the directory `path`; directories end in '/'. */
  list(path: string): Promise<string[]>
  write?(path: string, value: Uint8Array): Promise<void>
  delete?(path: string): Promise<void>
  mkdir?(path: string): Promise<void>
  rmdir?(path: string): Promise<void>
  /** Moves a file or directory within the mount, atomically, replacing a file at `to`. */
  rename?(from: string, to: string): Promise<void>
  /** Undoes what a leased read created (an IAM user, say). */
  revoke?(lease: Lease): Promise<void>
}

export type BackendFactory = (ctx: BackendContext) => Backend
