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
  /** A stored secret: its name, attributes and content change only through the core (ReadResult.cacheable). */
  cacheable?: boolean
  /** A directory in which a new file is such a stored secret (cacheable) from its first write. */
  newFilesCacheable?: boolean
}

/** What a read returns; a secret that must be revoked later carries a lease. */
export interface ReadResult {
  /** Decrypted: the caller owns it, and zeroes it when done. */
  value: Uint8Array
  created: Date
  modified: Date
  /** Set when the secret must be revoked later (an IAM user, say): the core gives it a lease. */
  lease?: LeaseRequest
  /**
   * Called once the lease is stored, so that a backend can drop its write-ahead record of what the
   * read created. When the lease cannot be stored, the core revokes the secret instead.
   */
  leased?(): Promise<void>
  /** Made afresh by this read (as EntryInfo.generated): each open of it gets its own copy. */
  generated?: boolean
  /** Refuses writes (as EntryInfo.readOnly). */
  readOnly?: boolean
  /**
   * Changes only when this very path is written, deleted or renamed through the core (a stored
   * secret): the filesystem may keep it in the kernel's page cache until then. Content that a
   * backend changes by itself (a rotation's time, say) must not say so.
   */
  cacheable?: boolean
  /**
   * What kind of credential the value's fields are, where their names alone do not say: a
   * PostgreSQL login's username and password. Programs get it as PGUSER and PGPASSWORD.
   */
  credential?: 'postgresql'
}

/** What revoking (or renewing) a secret needs, stored encrypted with its lease. Never the secret. */
export type LeaseData = Record<string, unknown>

/** What a leased read asks of the lease subsystem (src/core/expiration.ts). */
export interface LeaseRequest {
  /** Seconds the secret should live; 0 for the mount's default lease TTL (else the system's). */
  ttl: number
  /** Seconds from issue that renewals may reach; 0 for the mount's max lease TTL (else the system's). */
  maxTtl: number
  renewable: boolean
  data: LeaseData
}

export interface Lease {
  /** The logical path read and a random part: 'aws/creds/deploy/0d042c53-…'. */
  id: string
  /** The path within the mount that was read ('creds/deploy'). */
  path: string
  issued: Date
  expires: Date
  /** Renewals never take `expires` past this. */
  maxExpires: Date
  renewable: boolean
  lastRenewal?: Date
  data: LeaseData
  /** Why the last revocation failed, while it is being retried. */
  revokeError?: string
  revokeAttempts?: number
}

/** The lease subsystem, as a backend may use it for secrets it hands out outside a leased read. */
export interface LeaseAccess {
  /** Gives what the backend made for `path` (within the mount) a lease, as a leased read would. */
  register(path: string, request: LeaseRequest): Promise<Lease>
  /** Revokes one of this mount's leases now (through the backend's revoke). */
  revoke(id: string): Promise<void>
  /**
   * The TTL and max, in seconds, that a lease for `request` would get now (backend, then mount,
   * then system): what a backend tells the system it calls when the secret must expire there too
   * (a database role's VALID UNTIL).
   */
  ttls(request: Pick<LeaseRequest, 'ttl' | 'maxTtl'>): { ttl: number; max: number }
}

export interface BackendContext {
  storage: StorageView
  leases: LeaseAccess
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
  /**
   * Stores `value` at `path`. Resolves to `{ cacheable: true }` when a read of the path now gives
   * back exactly `value`, as a ReadResult that says `cacheable` (a stored secret).
   */
  write?(path: string, value: Uint8Array): Promise<void | { cacheable: true }>
  delete?(path: string): Promise<void>
  mkdir?(path: string): Promise<void>
  rmdir?(path: string): Promise<void>
  /** Moves a file or directory within the mount, atomically, replacing a file at `to`. */
  rename?(from: string, to: string): Promise<void>
  /** Undoes what a leased read created (an IAM user, say); succeeds when it is already gone. */
  revoke?(lease: Lease): Promise<void>
  /**
   * Asked before a renewal to `ttl` seconds is granted: returns the seconds the backend allows
   * (at most `ttl`), or throws to refuse. Without it, a renewable lease renews as asked.
   */
  renew?(lease: Lease, ttl: number): Promise<number>
  /**
   * Undoes what reads left half made when the daemon died mid-way (write-ahead records). Called
   * at each unseal, before any request reaches the mount; a failure is logged and retried at the
   * next unseal. On a store that daemons share, the one that leads calls it when it begins to,
   * for the records made `before` (older ones than any read still under way could have made).
   */
  recover?(options?: { before?: Date }): Promise<void>
  /**
   * Begins the backend's own timed work (rotating passwords on a schedule), once the mount is
   * ready: after recover() at unseal, or when it is mounted. close() ends it. On a store that
   * daemons share, only the one that leads runs it: stop() ends it when it stops leading.
   */
  start?(): void
  stop?(): void
  /**
   * Another daemon sharing the store wrote or deleted the mount's entry at `path` (a storage
   * path), or, for '', may have changed any of them (its notices were lost): what the backend
   * keeps in memory of it (a connection made from a configuration) is dropped.
   */
  changedElsewhere?(path: string): void
  /** Another daemon sharing the store revoked `lease`, or it expired there: the backend lets go of it. */
  leaseEnded?(lease: Lease): void
  /** The backend is dropped (seal, unmount): it zeroes any secret it keeps in memory. */
  close?(): void
}

export type BackendFactory = (ctx: BackendContext) => Backend
