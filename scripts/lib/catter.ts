// For benchmarks: `cat` run by one long-lived shell, so that what is timed is cat and the mount,
// not Node starting a process; and the rounds that time a cold `cat` of a generated credential
// against what it costs to make the same credential directly.
import { spawn } from 'node:child_process'
import { median, msSince } from './dev-daemon.js'

export interface Catter {
  /** What `cat file` printed (stdout). */
  cat(file: string): Promise<string>
  stop(): void
}

export function catter(): Catter {
  const shell = spawn('bash', ['-c', 'while IFS= read -r f; do cat "$f"; printf "\\0"; done'], { stdio: 'pipe' })
  let pending: ((out: string) => void) | undefined
  let buffered = ''
  shell.stdout.on('data', (d: Buffer) => {
    buffered += d.toString()
    const end = buffered.indexOf('\0')
    if (end >= 0 && pending) {
      const out = buffered.slice(0, end)
      buffered = buffered.slice(end + 1)
      pending(out)
    }
  })
  return {
    cat: (file) =>
      new Promise<string>((resolve) => {
        pending = resolve
        shell.stdin.write(file + '\n')
      }),
    stop: () => shell.kill(),
  }
}

export interface ColdCatRounds {
  rounds: number
  /** A stored secret: cat of it is the floor that starting cat and the mount's round trips cost. */
  floorFile: string
  /** The generated credential: each cat of it makes one. */
  file: string
  /** Throws if what cat printed is not a credential. */
  check(out: string): void
  /** Makes the same credential directly (an SDK's or a driver's calls), timed. */
  direct(round: number): Promise<void>
  /** Untimed, after each round (clean-up). */
  between?(round: number): Promise<void>
}

/** The medians, in ms, of the cat of the credential, the direct calls and the floor cat. */
export async function coldCatRounds(o: ColdCatRounds): Promise<{ cat: number; direct: number; floor: number }> {
  const { cat, stop } = catter()
  const times = { cat: [] as number[], direct: [] as number[], floor: [] as number[] }
  try {
    for (let i = 0; i < o.rounds; i++) {
      let start = process.hrtime.bigint()
      await cat(o.floorFile)
      times.floor.push(msSince(start))

      start = process.hrtime.bigint()
      const out = await cat(o.file)
      times.cat.push(msSince(start))
      o.check(out)

      start = process.hrtime.bigint()
      await o.direct(i)
      times.direct.push(msSince(start))
      await o.between?.(i)
    }
  } finally {
    stop()
  }
  return { cat: median(times.cat), direct: median(times.direct), floor: median(times.floor) }
}
