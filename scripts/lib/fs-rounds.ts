// The filesystem workloads bench-fs and bench-store both time: small secrets written durably and
// read, one after another, with the synchronous calls a program makes.
import fs from 'node:fs'
import path from 'node:path'

const now = () => process.hrtime.bigint()
const seconds = (start: bigint) => Number(now() - start) / 1e9

/** `count` secrets of `value` created, written, synced and closed in `dir` (made here); per second. */
export function durableWrites(dir: string, count: number, value: Buffer): number {
  fs.mkdirSync(dir)
  const start = now()
  for (let i = 0; i < count; i++) {
    const fd = fs.openSync(path.join(dir, `s${i}`), 'w')
    fs.writeSync(fd, value)
    fs.fsyncSync(fd)
    fs.closeSync(fd)
  }
  return count / seconds(start)
}

/** Those secrets opened, read whole and closed; per second. */
export function reads(dir: string, count: number, size: number): number {
  const buf = Buffer.alloc(4096)
  const start = now()
  for (let i = 0; i < count; i++) {
    const fd = fs.openSync(path.join(dir, `s${i}`), 'r')
    if (fs.readSync(fd, buf, 0, buf.length, 0) !== size) throw new Error('short read')
    fs.closeSync(fd)
  }
  return count / seconds(start)
}
