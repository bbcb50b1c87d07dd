// Types for the parts of fuse-native 2.2.6 that secretfs uses (the package ships none).

declare module 'fuse-native' {
  /** Negative errno values, or 0 for success. For read and write, the byte count instead. */
  type Status = number

  export interface Stat {
    mode: number
    uid: number
    gid: number
    size: number
    nlink?: number
    blocks?: number
    blksize?: number
    ino?: number
    dev?: number
    rdev?: number
    atime: Date | number
    mtime: Date | number
    ctime: Date | number
  }

  /** Handlers: each answers through its callback. Unregistered ones answer ENOSYS (libfuse). */
  export interface Operations {
    init?(cb: (err: Status) => void): void
    getattr?(path: string, cb: (err: Status, stat?: Stat) => void): void
    readdir?(path: string, cb: (err: Status, names?: string[], stats?: Stat[]) => void): void
    open?(path: string, flags: number, cb: (err: Status, fd?: number) => void): void
    create?(path: string, mode: number, cb: (err: Status, fd?: number) => void): void
    /** Answers with the number of bytes read (0 at the end), or a negative errno. */
    read?(
      path: string,
      fd: number,
      buffer: Buffer,
      length: number,
      position: number,
      cb: (result: Status) => void,
    ): void
    /** Answers with the number of bytes written, or a negative errno. */
    write?(
      path: string,
      fd: number,
      buffer: Buffer,
      length: number,
      position: number,
      cb: (result: Status) => void,
    ): void
    flush?(path: string, fd: number, cb: (err: Status) => void): void
    fsync?(path: string, datasync: number, fd: number, cb: (err: Status) => void): void
    release?(path: string, fd: number, cb: (err: Status) => void): void
    truncate?(path: string, size: number, cb: (err: Status) => void): void
    ftruncate?(path: string, fd: number, size: number, cb: (err: Status) => void): void
    unlink?(path: string, cb: (err: Status) => void): void
    rename?(src: string, dest: string, cb: (err: Status) => void): void
    mkdir?(path: string, mode: number, cb: (err: Status) => void): void
    rmdir?(path: string, cb: (err: Status) => void): void
    chmod?(path: string, mode: number, cb: (err: Status) => void): void
    chown?(path: string, uid: number, gid: number, cb: (err: Status) => void): void
    utimens?(path: string, atime: number, mtime: number, cb: (err: Status) => void): void
    symlink?(src: string, dest: string, cb: (err: Status) => void): void
    link?(src: string, dest: string, cb: (err: Status) => void): void
    mknod?(path: string, mode: number, dev: number, cb: (err: Status) => void): void
  }

  export interface FuseOptions {
    /** Per-operation timeout in ms (default 15 s), or false for none. */
    timeout?: number | false
    /** Unmount a dead mount at the mountpoint first. */
    force?: boolean
    mkdir?: boolean
    debug?: boolean
    allowOther?: boolean
    allowRoot?: boolean
    autoUnmount?: boolean
    defaultPermissions?: boolean
    fsname?: string
    subtype?: string
    kernelCache?: boolean
    autoCache?: boolean
    /** Seconds. fuse-native drops a falsy value, so a zero must be passed as the string '0'. */
    entryTimeout?: number | string
    attrTimeout?: number | string
    maxRead?: number
  }

  export default class Fuse {
    constructor(mountpoint: string, ops: Operations, options?: FuseOptions)
    readonly mnt: string
    mount(cb: (err: Error | null) => void): void
    unmount(cb: (err: Error | null) => void): void
    static unmount(mountpoint: string, cb: (err: Error | null) => void): void
  }
}
