// Test helper: drives test/fixtures/fd-driver.ts, a child process holding descriptors open on a
// mount. Each call sends one command and resolves with its answer; the child is killed in teardown.
import { spawn } from 'node:child_process'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Scope } from './daemon.js'

const fixture = fileURLToPath(new URL('../fixtures/fd-driver.ts', import.meta.url))

export interface Answer {
  fd?: number
  written?: number
  data?: string
  size?: number
  closed?: boolean
  /** The errno code of a failed call ('EACCES'). */
  error?: string
}

export interface FdDriver {
  open(path: string, flags: string): Promise<number>
  write(fd: number, data: string, position?: number): Promise<Answer>
  read(fd: number): Promise<Answer>
  fstat(fd: number): Promise<Answer>
  close(fd: number): Promise<Answer>
}

export function fdDriver(t: Scope, cwd: string): FdDriver {
  // The child changes directory itself: see sh() in daemon.ts for why a spawn must not.
  const child = spawn(process.execPath, [...process.execArgv, fixture, cwd], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => void child.kill('SIGKILL'))
  const waiting: ((a: Answer) => void)[] = []
  readline.createInterface({ input: child.stdout }).on('line', (line) => waiting.shift()?.(JSON.parse(line) as Answer))
  const send = (command: Record<string, unknown>) =>
    new Promise<Answer>((resolve) => {
      waiting.push(resolve)
      child.stdin.write(JSON.stringify(command) + '\n')
    })
  return {
    async open(path, flags) {
      const a = await send({ op: 'open', path, flags })
      if (a.fd === undefined) throw new Error(`open ${path} failed: ${a.error}`)
      return a.fd
    },
    write: (fd, data, position) => send({ op: 'write', fd, data, position: position ?? null }),
    read: (fd) => send({ op: 'read', fd }),
    fstat: (fd) => send({ op: 'fstat', fd }),
    close: (fd) => send({ op: 'close', fd }),
  }
}
