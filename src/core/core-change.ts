// What the core announces after it changed something, for front ends that hold state derived from
// the store: the filesystem's open files follow a rename, let go of a deleted or replaced secret,
// and drop every decrypted byte at a seal. Paths are logical ('secret/a/b'; a mount is 'secret').

export type CoreChange =
  /**
   * A secret's value was replaced. `source` is what the writer passed (the fs's own commits).
   * `value` is the value written, when a read now gives back exactly it and may cache it
   * (ReadResult.cacheable); it is the writer's buffer, valid only during the listener's call.
   */
  | { kind: 'written'; path: string; source: unknown; value?: Uint8Array }
  /** A secret or directory is gone, with everything beneath it (delete, rmdir, unmount). */
  | { kind: 'removed'; path: string }
  /** Everything at or beneath `from` now lives at `to` (rename, remount). */
  | { kind: 'moved'; from: string; to: string }
  /** Every key was dropped. */
  | { kind: 'sealed' }
  /** Another daemon sharing the store wrote or deleted the secret (or directory) at `path`. */
  | { kind: 'changed'; path: string }
  /** Another daemon sharing the store may have changed anything (its notices were lost). */
  | { kind: 'reloaded' }

/**
 * Called once the change is made. What a listener returns, if a promise, is the front end's own
 * work to follow the change (the filesystem dropping what the kernel caches): see
 * Core.changesApplied.
 */
export type ChangeListener = (change: CoreChange) => void | Promise<unknown>

/** A logical path as announced: no trailing '/'. */
export const announced = (path: string): string => (path.endsWith('/') ? path.slice(0, -1) : path)
