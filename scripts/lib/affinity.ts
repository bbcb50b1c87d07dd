// Whether a benchmark runs pinned to one CPU: on this VM a request that crosses CPUs costs ~35 µs
// of wake-up, so the figures are taken both ways (`taskset -c 0` for pinned) and say which they are.
import fs from 'node:fs'

/** The CPUs this process (and so every server it starts) may run on, and whether that is one. */
export function affinity(): { cpus: string; pinned: boolean } {
  const cpus = /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '?'
  return { cpus, pinned: /^\d+$/.test(cpus) }
}

/** Prints the line that says whether this run is pinned. */
export function printAffinity(): void {
  const { cpus, pinned } = affinity()
  console.log(
    pinned
      ? `pinned: client and servers on CPU ${cpus}`
      : `unpinned: CPUs ${cpus} (run again under taskset -c 0 for the pinned figures)`,
  )
}
