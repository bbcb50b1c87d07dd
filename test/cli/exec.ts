// The real CLI against a control API served in this process: `secretfs exec` puts secrets in a
// program's environment, passes its status, stdio and signals through, and revokes its leases
// when it exits; a secret that cannot be read stops it before the program runs.
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { refusingYargs, withApi } from '../helpers/cli-run.js'
import { cloudCore, upstream } from '../helpers/cloud-backend.js'
import { cliCommand, sh, tempDir } from '../helpers/daemon.js'
import { atTerminal } from '../helpers/terminal.js'

const up = upstream({ ttl: 0, maxTtl: 0 })
const core = await cloudCore(t, up)
await core.mount('aws', 'aws')
const { api, cli } = await withApi(t, { core })
// tap puts a module into every node process it starts (through NODE_OPTIONS, even when a spawn
// sets it) that swallows a signal a process sends itself, as secretfs does to die of its
// program's signal: where that matters, the CLI runs as users run it.
const PLAIN = ['env', '-u', 'NODE_OPTIONS']
const HOSTILE = `o'brien "$HOME" \`id\` $(id)\nline two ☃ \\`
await api.core.write('secret/app', Buffer.from(JSON.stringify({ user_name: HOSTILE, port: 5432, 'api-key': 'k1' })))
await api.core.write('secret/text', Buffer.from('just text\n'))
await api.core.write('secret/one', Buffer.from('{"password":"p1"}'))
await api.core.write('secret/binary', Buffer.from([0xff, 0xfe, 0x00, 0x01]))
const work = await tempDir(t)

/** secretfs exec spawned here, in a session of its own (no terminal), with its output as it comes. */
function startExec(args: string[], env: NodeJS.ProcessEnv = {}) {
  const c = cliCommand()
  const child = spawn(PLAIN[0]!, [...PLAIN.slice(1), c.file, ...c.args, 'exec', ...args], {
    env: { ...process.env, ...c.env, SECRETFS_ADDR: api.socketPath, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL')
  })
  const until = async (text: string, ms = 30_000) => {
    const deadline = Date.now() + ms
    while (!stdout.includes(text)) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`exec exited before printing ${JSON.stringify(text)}: ${stdout}\n${stderr}`)
      if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} within ${ms} ms: ${stdout}\n${stderr}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  return { child, exited, until, stdout: () => stdout, stderr: () => stderr }
}

t.test("a secret's fields reach the program, exactly", async (t) => {
  const r = await cli(['exec', 'secret/app', '--', 'sh', '-c', 'printf "%s|%s|%s" "$USER_NAME" "$PORT" "$API_KEY"'])
  t.same([r.code, r.stdout, r.stderr], [0, `${HOSTILE}|5432|k1`, ''])
  const prefixed = await cli([
    'exec',
    '--prefix',
    'db_',
    'secret/app',
    '--',
    'sh',
    '-c',
    'printf "%s|%s" "$DB_PORT" "${PORT-unset}"',
  ])
  t.same([prefixed.code, prefixed.stdout], [0, '5432|unset'], '--prefix names every field')
  const inherited = await cli(['exec', 'secret/one', '--', 'sh', '-c', 'printf %s "$FROM_PARENT"'], undefined, {
    FROM_PARENT: 'kept',
  })
  t.equal(inherited.stdout, 'kept', "the parent's environment is passed on")
  const leading = await cli(['exec', '/secret/one', '--', 'sh', '-c', 'printf %s "$PASSWORD"'])
  t.equal(leading.stdout, 'p1', 'a leading / is dropped, as read does')
})

t.test('--env NAME=PATH#FIELD, NAME=PATH for text or a single field', async (t) => {
  const r = await cli([
    'exec',
    '--env',
    'WHO=secret/app#user_name',
    '--env=TEXT=secret/text',
    '--env',
    'PW=secret/one',
    '--env',
    'KEY=secret/app#api-key',
    '--',
    'sh',
    '-c',
    'printf "%s|%s|%s|%s|%s" "$WHO" "$TEXT" "$PW" "$KEY" "${USER_NAME-unset}"',
  ])
  t.same([r.code, r.stdout, r.stderr], [0, `${HOSTILE}|just text\n|p1|k1|unset`, ''], '--env sets only its variable')
  const both = await cli([
    'exec',
    'secret/one',
    '--env',
    'WHO=secret/app#user_name',
    '--',
    'sh',
    '-c',
    'printf "%s|%s" "$PASSWORD" "$WHO"',
  ])
  t.same([both.code, both.stdout], [0, `p1|${HOSTILE}`])

  const marker = path.join(work, 'env-ran')
  const refused = async (args: string[], code: number, stderr: RegExp, what: string) => {
    const r = await cli(['exec', ...args, '--', 'touch', marker])
    t.equal(r.code, code, what)
    t.match(r.stderr, stderr, what)
    t.equal(r.stdout, '', what)
    await t.rejects(fs.stat(marker), { code: 'ENOENT' }, `${what}: the program did not run`)
  }
  await refused(
    ['--env', 'X=secret/app'],
    1,
    /^Error: the secret at secret\/app has 3 fields: name the one to use\nUse: --env NAME=secret\/app#FIELD\n$/,
    'several fields',
  )
  await refused(['--env', 'X=secret/app#nope'], 1, /^Error: no field "nope" at secret\/app\n$/, 'a missing field')
  await refused(
    ['--env', 'X=secret/text#f'],
    1,
    /^Error: the value at secret\/text is not a JSON object, so it has no field "f"\n$/,
    'a field of text',
  )
  await refused(
    ['--env', 'X=secret/binary'],
    1,
    /^Error: the value at secret\/binary is not UTF-8 text, so no environment variable can hold it\n$/,
    'binary',
  )
  await refused(
    ['secret/text'],
    1,
    /^Error: the value at secret\/text is not a JSON object of fields, so it makes no variables\n.*--env NAME=secret\/text\n$/,
    'text as PATH',
  )
  await refused(
    ['secret/app', '--env', 'PORT=secret/one'],
    1,
    /^Error: secret\/app and --env PORT both set the variable PORT\nGive one of them another name/,
    'a collision',
  )
  await refused(
    ['--env', '1X=secret/one'],
    2,
    /^Error: --env 1X=secret\/one: the variable's name must be letters, digits and _/,
    'a bad name',
  )
  await refused(['--env', 'X'], 2, /^Error: --env X: give NAME=PATH or NAME=PATH#FIELD\n/, 'no =')
  await refused(['--env', 'X=secret/one#'], 2, /^Error: --env X=secret\/one#: name the field after #/, 'an empty field')
  await api.core.write('secret/nul', Buffer.from(JSON.stringify({ a: 'x\0y' })))
  await refused(['secret/nul'], 1, /^Error: the value for A \(from secret\/nul\) holds a NUL character/, 'a NUL')
  await api.core.write('secret/twice', Buffer.from(JSON.stringify({ 'a-b': '1', a_b: '2' })))
  await refused(
    ['secret/twice'],
    1,
    /^Error making variables of secret\/twice: the fields "a-b" and "a_b" both make the variable A_B\n$/,
    'two fields, one name',
  )
})

t.test('usage errors', async (t) => {
  for (const [args, message] of [
    [['secret/one', 'true'], /^Error: exec needs -- before the program to run\nUse: secretfs exec PATH\.\.\. -- CMD/],
    [['secret/one', '--'], /^Error: name the program to run after --\n/],
    [
      ['--', 'true'],
      /^Error: name at least one secret: PATH, or --env NAME=PATH\[#FIELD\]\nSee: secretfs exec --help\n$/,
    ],
    [['--bogus', 'secret/one', '--', 'true'], /^Error: Unknown option '--bogus'\nSee: secretfs exec --help\n$/],
    [['--prefix'], /^Error: Option '--prefix <value>' argument missing/],
    // What Node makes of an argument that is not UTF-8: U+FFFD for each byte it could not decode.
    [
      ['secret/one', '--', 'printf', '%s', 'a\uFFFD'],
      /^Error: argument 2 of the program is not UTF-8 text \(or holds the character U\+FFFD\), which secretfs exec cannot pass on unchanged\nGive it through a file or a variable the program reads\n$/,
    ],
    [['secret/one', '--', '\uFFFD'], /^Error: the program is not UTF-8 text \(or holds the character U\+FFFD\)/],
  ] as const) {
    const r = await cli(['exec', ...args])
    t.same([r.code, r.stdout], [2, ''], args.join(' '))
    t.match(r.stderr, message, args.join(' '))
  }
  // The same from a shell, with a byte that is not UTF-8 (dash's printf takes octal).
  const c = cliCommand()
  const bytes = await sh(
    `${[c.file, ...c.args].map((a) => `'${a}'`).join(' ')} exec secret/one -- printf %s "$(printf 'a\\377')"`,
    { env: { ...c.env, SECRETFS_ADDR: api.socketPath } },
  )
  t.same([bytes.code, bytes.stdout], [2, ''], 'a byte that is not UTF-8 is refused, and the program never runs')
  t.match(bytes.stderr, /^Error: argument 2 of the program is not UTF-8 text/)
  const help = await cli(['exec', '--help', '--', 'ignored'])
  t.same([help.code, help.stderr], [0, ''])
  t.match(help.stdout, /^Usage: secretfs exec \[options\] \[PATH\.\.\.\] -- CMD \[ARGS\.\.\.\]\n/)
  t.match((await cli(['--help'])).stdout, /secretfs exec +Run a program with secrets in its/)
  // The program's own options are its own, -h and -- included.
  const own = await cli(['exec', 'secret/one', '--', 'sh', '-c', 'printf "%s " "$@"', 'sh', '-h', '--', '--prefix'])
  t.same([own.code, own.stdout], [0, '-h -- --prefix '])
})

t.test('the exit status is the program’s; a signal that kills it kills secretfs', async (t) => {
  t.same((await cli(['exec', 'secret/one', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3'])).code, 3)
  const term = startExec(['secret/one', '--', 'sh', '-c', 'kill -TERM $$'])
  t.same(await term.exited, { code: null, signal: 'SIGTERM' }, 'died of SIGTERM')
  t.equal(term.stderr(), '')
  const started = startExec(['secret/one', '--', 'sh', '-c', 'kill -INT $$'])
  t.same(await started.exited, { code: null, signal: 'SIGINT' }, 'died of SIGINT itself, as a shell script would')
  const c = cliCommand()
  const status = await sh(
    `"$0" "$@" exec secret/one -- sh -c 'kill -TERM $$'; echo "status $?"; "$0" "$@" exec secret/one -- sh -c 'kill -USR1 $$'; echo "status $?"`.replace(
      /"\$0" "\$@"/g,
      [...PLAIN, c.file, ...c.args].map((a) => `'${a}'`).join(' '),
    ),
    { env: { ...c.env, SECRETFS_ADDR: api.socketPath } },
  )
  t.equal(status.stdout, 'status 143\nstatus 138\n', 'a shell sees 128+N; SIGUSR1 (Node keeps it) as an exit code')
})

t.test('stdin, stdout and stderr pass through', async (t) => {
  const r = await cli(['exec', 'secret/one', '--', 'sh', '-c', 'cat; echo to-stderr >&2'], 'typed in\n')
  t.same([r.code, r.stdout, r.stderr], [0, 'typed in\n', 'to-stderr\n'])
})

t.test('each forwarded signal sent to secretfs reaches the program, which outlives it', async (t) => {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const
  // The program reports each signal and exits on SIGUSR2, the last.
  const traps = signals.map((s) => `trap 'echo got ${s}${s === 'SIGUSR2' ? '; exit 9' : ''}' ${s.slice(3)}`).join('\n')
  const run = startExec(['secret/one', '--', 'sh', '-c', `${traps}\necho ready\nwhile :; do sleep 0.05; done`])
  await run.until('ready')
  for (const s of signals.filter((s) => s !== 'SIGUSR2')) {
    run.child.kill(s)
    await run.until(`got ${s}`)
  }
  t.equal(run.child.exitCode, null, 'secretfs still waits for the program')
  run.child.kill('SIGUSR2')
  t.same(await run.exited, { code: 9, signal: null })
  const order = [...signals.filter((s) => s !== 'SIGUSR2'), 'SIGUSR2']
  t.equal(run.stdout(), `ready\n${order.map((s) => `got ${s}\n`).join('')}`, 'each once, in order')
  t.equal(run.stderr(), '')
})

t.test('Ctrl-C at a terminal reaches the program once, and secretfs waits for it', async (t) => {
  // Python's own handler runs once for signals that come close together; its wakeup fd gets a
  // byte for each.
  const program = [
    'import os, select, signal, sys',
    'r, w = os.pipe()',
    'os.set_blocking(r, False); os.set_blocking(w, False)',
    'signal.set_wakeup_fd(w)',
    'signal.signal(signal.SIGINT, lambda s, f: None)',
    'print("ready", flush=True)',
    'select.select([r], [], [])',
    'print("got INT", flush=True)',
    'line = sys.stdin.readline()',
    'print("typed", line.strip(), "signals", len(os.read(r, 100)), flush=True)',
    'sys.exit(5)',
  ].join('\n')
  const r = await atTerminal(
    t,
    ['exec', 'secret/one', '--', 'python3', '-c', program],
    [
      ['ready', '\x03'],
      ['got INT', 'go\r'],
    ],
    { NODE_OPTIONS: '', SECRETFS_ADDR: api.socketPath },
  )
  t.equal(r.missed, undefined, r.output)
  t.match(r.output, /typed go signals 1\r?\n/, 'one SIGINT, and the terminal is the program’s')
  t.equal(r.code, 5)
})

t.test('a secret that cannot be read: the program never runs, leases already made are revoked', async (t) => {
  const marker = path.join(work, 'ran')
  const before = up.users.size
  const r = await cli(['exec', 'aws/creds/deploy', 'secret/missing', '--', 'touch', marker])
  t.same([r.code, r.stdout, r.stderr], [1, '', 'Error: No value found at secret/missing\n'])
  await t.rejects(fs.stat(marker), { code: 'ENOENT' }, 'the program did not run')
  t.equal(up.users.size, before, 'the credential read meanwhile is revoked')
  const down = await cli(['exec', 'secret/one', '--', 'touch', marker], undefined, {
    SECRETFS_ADDR: path.join(work, 'none.sock'),
  })
  t.equal(down.code, 1)
  t.match(down.stderr, /^Error: no secretfs daemon is running at .*none\.sock\.\n/)
  await t.rejects(fs.stat(marker), { code: 'ENOENT' })
})

t.test('a program that is not found: 127, as a shell says; leases revoked', async (t) => {
  const before = up.users.size
  for (const keep of [[], ['--keep-lease']]) {
    const r = await cli(['exec', ...keep, 'aws/creds/deploy', '--', 'no-such-program-here', 'x'])
    t.same(
      [r.code, r.stdout, r.stderr],
      [127, '', 'Error: no-such-program-here: command not found\nCheck its name, or give its full path.\n'],
    )
    t.equal(up.users.size, before, `${keep.join('') || 'no flag'}: nothing ran, so nothing keeps the credential`)
  }
  const file = path.join(work, 'not-executable')
  await fs.writeFile(file, '#!/bin/sh\n', { mode: 0o600 })
  const r = await cli(['exec', 'secret/one', '--', file])
  t.same([r.code, r.stderr], [126, `Error: ${file}: permission denied\n`])
})

t.test('a leased secret lives exactly as long as the program', async (t) => {
  const run = startExec(['aws/creds/deploy', '--', 'sh', '-c', 'echo "$USER"; read line; exit 4'])
  await run.until('\n')
  const user = run.stdout().trim()
  t.match(user, /^deploy-\d+$/)
  t.ok(up.users.has(user), 'the credential exists while the program runs')
  t.equal(core.listLeases('aws/creds/deploy/').length, 1)
  run.child.stdin.end('\n')
  t.same(await run.exited, { code: 4, signal: null })
  t.notOk(up.users.has(user), 'and is revoked when it exits')
  t.same(core.listLeases(''), [])

  const kept = await cli(['exec', '--keep-lease', 'aws/creds/deploy', '--', 'sh', '-c', 'printf %s "$USER"'])
  t.equal(kept.code, 0)
  t.ok(up.users.has(kept.stdout), '--keep-lease leaves it')
  t.equal(core.listLeases('aws/creds/deploy/').length, 1)
  await cli(['revoke', '--prefix', 'aws/'])

  const once = await cli([
    'exec',
    'aws/creds/deploy',
    '--env',
    'WHO=aws/creds/deploy#user',
    '--',
    'sh',
    '-c',
    'printf "%s %s" "$USER" "$WHO"',
  ])
  const [a, b] = once.stdout.split(' ')
  t.equal(a, b, 'a path named twice is read once: one credential')
  t.same(core.listLeases(''), [])
})

t.test("a failed revocation is reported and leaves the program's status", async (t) => {
  const run = startExec(['aws/creds/deploy', '--', 'sh', '-c', 'echo "$USER"; read line; exit 6'])
  await run.until('\n')
  const user = run.stdout().trim()
  up.failing.add(user)
  t.teardown(() => up.failing.clear())
  run.child.stdin.end('\n')
  t.same(await run.exited, { code: 6, signal: null })
  const [id] = core.listLeases('aws/creds/deploy/')
  const lease = `aws/creds/deploy/${id}`
  t.equal(
    run.stderr(),
    `Error revoking the lease ${lease}: internal error\n` +
      `The lease stays until it expires; revoke it with: secretfs revoke ${lease}\n`,
  )
  t.ok(up.users.has(user), 'the credential is still there, and said so')
  up.failing.clear()
  t.equal((await cli(['revoke', lease])).code, 0, 'the command it suggests works')
  t.notOk(up.users.has(user))
})

t.test('an AWS credential hides inherited profiles and tokens', async (t) => {
  await api.core.write(
    'secret/aws',
    Buffer.from(JSON.stringify({ access_key: 'AKIA1', secret_key: 's', security_token: null })),
  )
  const r = await cli(
    [
      'exec',
      'secret/aws',
      '--',
      'sh',
      '-c',
      'env | grep -E "^AWS_(ACCESS|SECRET|SESSION|SECURITY|PROFILE|DEFAULT_PROFILE|CREDENTIAL|REGION)" | sort',
    ],
    undefined,
    {
      AWS_PROFILE: 'other',
      AWS_SESSION_TOKEN: 'stale',
      AWS_REGION: 'eu-west-1',
      AWS_CREDENTIAL_EXPIRATION: 'x',
    },
  )
  t.same([r.code, r.stdout], [0, 'AWS_ACCESS_KEY_ID=AKIA1\nAWS_REGION=eu-west-1\nAWS_SECRET_ACCESS_KEY=s\n'])
})

t.test('exec never loads yargs', async (t) => {
  const env = refusingYargs(t)
  const r = await cli(['exec', 'secret/one', '--', 'sh', '-c', 'printf %s "$PASSWORD"'], undefined, env)
  t.same([r.code, r.stdout, r.stderr], [0, 'p1', ''])
  t.match((await cli(['--help'], undefined, env)).stderr, /yargs was loaded/, 'the hook does refuse yargs')
})
