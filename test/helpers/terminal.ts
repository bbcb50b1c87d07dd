// Test helper: runs the secretfs CLI on a real pseudo-terminal (python3's pty module), typing
// each answer only once its prompt has appeared, with a deadline for each; the whole dialogue and
// the exit status come back. Teardown kills the terminal's process if the test ends first.

import { spawn } from 'node:child_process'
import { cliCommand, type Scope } from './daemon.js'

/** What to wait for on the terminal, then what to type (bytes as they are: '\r' is Enter). */
export type Step = [expect: string, type: string]

export interface TerminalResult {
  /** Everything the terminal showed. */
  output: string
  /** The exit code, or null when a signal ended the process. */
  code: number | null
  /** The text of the step whose prompt never came, if one did not. */
  missed?: string
}

const DRIVER = String.raw`
import json, os, pty, select, signal, sys, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execve(spec['argv'][0], spec['argv'], spec['env'])
out, seen, missed = b'', 0, None
def read(deadline):
    global out
    left = deadline - time.monotonic()
    if left <= 0: return 'timeout'
    r, _, _ = select.select([fd], [], [], left)
    if not r: return 'timeout'
    try: chunk = os.read(fd, 4096)
    except OSError: return 'eof'
    if not chunk: return 'eof'
    out += chunk
    return 'data'
for expect, answer in spec['steps']:
    want = expect.encode()
    deadline = time.monotonic() + spec['stepSeconds']
    while out.find(want, seen) < 0:
        if read(deadline) != 'data': break
    at = out.find(want, seen)
    if at < 0:
        missed = expect
        break
    seen = at + len(want)
    os.write(fd, answer.encode())
deadline = time.monotonic() + spec['stepSeconds']
last = 'data'
while last == 'data': last = read(deadline)
if missed or last == 'timeout': os.kill(pid, signal.SIGKILL)
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
print(json.dumps({'output': out.decode('utf-8', 'replace'), 'code': code if code is None or code >= 0 else None, 'missed': missed}))
`

/** Runs the CLI with `args` on a terminal, answering each prompt of `steps` in turn. */
export function atTerminal(
  t: Scope,
  args: string[],
  steps: Step[],
  env: NodeJS.ProcessEnv = {},
  stepSeconds = 30,
): Promise<TerminalResult> {
  const cli = cliCommand()
  const spec = {
    argv: [cli.file, ...cli.args, ...args],
    env: { ...process.env, ...cli.env, ...env },
    steps,
    stepSeconds,
  }
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', DRIVER, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`the terminal driver failed (${code}):\n${err}`))
      const r = JSON.parse(out) as { output: string; code: number | null; missed: string | null }
      resolve({ output: r.output, code: r.code, ...(r.missed !== null && { missed: r.missed }) })
    })
  })
}
