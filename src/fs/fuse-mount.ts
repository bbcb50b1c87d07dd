// Mounts a SecretFs with fuse-native, the fallback binding: private to the daemon's user (no
// allow_other). libfuse 2's high-level API cannot tell the kernel that a path changed, so this
// mount lets the kernel cache no attributes: a change made elsewhere (the control API, the lease
// system) is seen by every stat or read that starts after it.

import type FuseNative from 'fuse-native'
import type { FuseOptions } from 'fuse-native'
import type { Logger } from '../log.js'
import type { SecretFs } from './secret-fs.js'

export type Fuse = typeof FuseNative

/**
 * libfuse options that fuse-native has no setting for, passed through its fsname (it joins every
 * option with ',' after '-o'):
 * - direct_io: reads and writes go to the handle, never through the page cache. Only then does
 *   every open see its own content: generated content (a sys/ file, credentials) differs from one
 *   open to the next and its size is only an upper bound, which the page cache (shared by all
 *   opens of a file, and refilled up to the size getattr reports) would pad with zeros or serve
 *   to the wrong reader.
 * - atomic_o_trunc: open(O_TRUNC) arrives as one request, so the old value is not read in vain.
 */
const EXTRA_LIBFUSE_OPTIONS = ['direct_io', 'atomic_o_trunc']

export const FUSE_OPTIONS: FuseOptions = {
  fsname: ['secretfs', ...EXTRA_LIBFUSE_OPTIONS].join(','),
  // /proc/mounts lists the mount as fuse.secretfs.
  subtype: 'secretfs',
  // Names are cached for 5 s, which spares a lookup of every name on a path on every access: each
  // costs a round trip through two threads (~70-150 µs on a 2-core VM). No answer comes from that
  // cache: each request still carries its path and is answered by the core, an open of a name the
  // core no longer has is retried after a fresh lookup (ESTALE), mkdir and O_EXCL always look up
  // afresh, and misses are never cached (libfuse's negative_timeout is 0). The one visible cost of
  // a longer time: a name the core turned from a file into a directory (or back) in that window
  // gives EIO once, and the kernel then looks it up afresh.
  entryTimeout: '5',
  // Attributes are never cached: stat and readers that trust the size (Node's readFile) see a
  // change made elsewhere at once. `ls -l` costs two requests per name (a lookup, then a getattr);
  // the low-level binding caches them and invalidates what changes. Contents are never cached
  // (direct_io, above).
  attrTimeout: '0',
  // fuse-native answers ETIMEDOUT for a handler silent for 15 s: a commit slowed by the disk would
  // then be reported failed to close, and land after. Every handler here answers, so no timer
  // (which also spares one per request).
  timeout: false,
  kernelCache: false,
  autoCache: false,
}

export interface FsMount {
  readonly mountpoint: string
  /** Finishes requests in progress and commits open files, then unmounts. */
  unmount(): Promise<void>
}

/** The two ways secretfs mounts a SecretFs (see src/daemon/fuse-library.ts). */
export type FuseBindingName = 'lowlevel' | 'fuse-native'

export interface FuseBinding {
  readonly name: FuseBindingName
  mount(mountpoint: string, fs: SecretFs, log: Logger): Promise<FsMount>
}

export async function mountFs(Fuse: Fuse, mountpoint: string, fs: SecretFs): Promise<FsMount> {
  const fuse = new Fuse(mountpoint, fs.operations(), FUSE_OPTIONS)
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())))
  return drainedMount(
    mountpoint,
    fs,
    () => new Promise<void>((resolve, reject) => fuse.unmount((err) => (err ? reject(err) : resolve()))),
  )
}

/** A mount whose unmount, once, finishes `fs`'s requests and commits, then runs `release`. */
export function drainedMount(mountpoint: string, fs: SecretFs, release: () => void | Promise<void>): FsMount {
  let unmounted: Promise<void> | undefined
  return {
    mountpoint,
    unmount: () =>
      (unmounted ??= (async () => {
        await fs.drain()
        await release()
      })()),
  }
}
