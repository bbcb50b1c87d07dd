// One open() of a file: the shared content it reads and writes (open-file.ts), and how it was
// opened.

import type { OpenFile } from './open-file.js'

export class FileHandle {
  readonly file: OpenFile
  readonly writable: boolean
  readonly append: boolean
  /**
   * Written through this handle since open. A shell opens `> f`, dup2s the descriptor and closes
   * the original, which flushes before a byte is written: committing then would publish an empty
   * secret in place of the old one, half-way through `echo x > f`. Such a close commits nothing;
   * the last close (release) commits whatever is left.
   */
  wrote = false

  constructor(file: OpenFile, options: { writable: boolean; append?: boolean }) {
    this.file = file
    this.writable = options.writable
    this.append = options.append ?? false
  }
}
