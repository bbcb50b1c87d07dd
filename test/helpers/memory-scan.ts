// Test helper: counts where byte strings occur in another process's memory, by reading every
// readable mapping of /proc/PID/mem (root may read any process's, even a non-dumpable one).
import fs from 'node:fs/promises'

/** How often each needle occurs; `where` collects the mapping (a line of maps) of each find. */
export async function countInMemory(pid: number, needles: Buffer[], where?: string[]): Promise<number[]> {
  const maps = await fs.readFile(`/proc/${pid}/maps`, 'utf8')
  const mem = await fs.open(`/proc/${pid}/mem`, 'r')
  const counts = needles.map(() => 0)
  const longest = Math.max(...needles.map((n) => n.length))
  try {
    for (const line of maps.split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/.exec(line)
      if (!m || !m[3]!.startsWith('r') || line.includes('[vvar]') || line.includes('[vsyscall]')) continue
      // Numbers, not BigInts: user-space addresses fit, and a BigInt position reads as EIO here.
      const start = parseInt(m[1]!, 16)
      const end = parseInt(m[2]!, 16)
      const chunk = 16 << 20
      let carry = Buffer.alloc(0)
      for (let at = start; at < end; at += chunk) {
        const size = Math.min(chunk, end - at)
        const buf = Buffer.alloc(size)
        let n: number
        try {
          ;({ bytesRead: n } = await mem.read(buf, 0, size, at))
        } catch {
          break // unreadable (guard pages, device mappings)
        }
        const hay = Buffer.concat([carry, buf.subarray(0, n)])
        needles.forEach((needle, i) => {
          for (let k = hay.indexOf(needle); k >= 0; k = hay.indexOf(needle, k + 1))
            if (k + needle.length > carry.length) {
              counts[i]!++
              const context = hay.subarray(Math.max(0, k - 160), k + needle.length + 40).toString('latin1')
              where?.push(
                `needle ${i} at +${(at + k - carry.length - start).toString(16)} in ${line}: ${JSON.stringify(context)}`,
              )
            }
        })
        carry = hay.subarray(Math.max(0, hay.length - longest + 1))
      }
    }
  } finally {
    await mem.close()
  }
  return counts
}
