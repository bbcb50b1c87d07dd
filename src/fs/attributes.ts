// File attributes as the kernel sees them: secrets 0600, directories 0700, read-only entries
// without write bits, everything owned by the user running the daemon.

import type { Stat } from 'fuse-native'
import type { EntryInfo } from '../backends/backend.js'

const S_IFDIR = 0o040000
const S_IFREG = 0o100000

export class Attributes {
  readonly #uid: number
  readonly #gid: number
  readonly #started = new Date()

  constructor(uid = process.getuid?.() ?? 0, gid = process.getgid?.() ?? 0) {
    this.#uid = uid
    this.#gid = gid
  }

  /** The mountpoint's own directory: the mount table. */
  root(): Stat {
    return this.#make(S_IFDIR | 0o700, 0, this.#started)
  }

  of(info: EntryInfo): Stat {
    // A backend that keeps no time for an entry (the top of a mount) gives the epoch.
    const modified = info.modified.getTime() === 0 ? this.#started : info.modified
    if (info.kind === 'dir') return this.#make(S_IFDIR | (info.readOnly ? 0o500 : 0o700), 0, modified)
    return this.#make(S_IFREG | (info.readOnly ? 0o400 : 0o600), info.size, modified)
  }

  /** A file open on the mount: its content, saved or not, is the current one. */
  open(size: number, modified: Date): Stat {
    return this.#make(S_IFREG | 0o600, size, modified)
  }

  /** A file's times are all its last change: the kernel's stat has no field for its creation. */
  #make(mode: number, size: number, modified: Date): Stat {
    const dir = (mode & S_IFDIR) !== 0
    return {
      mode,
      uid: this.#uid,
      gid: this.#gid,
      size,
      nlink: dir ? 2 : 1,
      blksize: 4096,
      blocks: Math.ceil(size / 512),
      atime: modified,
      mtime: modified,
      ctime: modified,
    }
  }
}
