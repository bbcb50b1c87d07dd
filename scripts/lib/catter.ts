// For benchmarks: `cat` run by one long-lived shell, so that what is timed is cat and the mount,
// not Node starting a process.
import { spawn } from 'node:child_process'

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
