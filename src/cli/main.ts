#!/usr/bin/env node
// The secretfs command. Each command's code is imported only when that command runs, so that a
// quick `secretfs read` does not pay for the filesystem, the store or the HTTP server; the data
// commands on a plain command line skip even yargs (see fast-path.ts), and `exec`, whose program's
// arguments follow `--` (which yargs drops), always parses its own.

import type { Argv } from 'yargs'
import { fastCommand } from './fast-path.js'

/** A command line that names no valid request (a check failed): printed with the usage hint, exit 2. */
class UsageError extends Error {}

interface CommandModule {
  run(args: never): Promise<void>
}

/** Runs a command's implementation; a failure becomes a message and an exit code. */
async function runCommand(load: () => Promise<CommandModule>, args: unknown): Promise<void> {
  try {
    await (await load()).run(args as never)
  } catch (e) {
    const { reportError } = await import('./report-error.js')
    process.exitCode = reportError(e)
  }
}

const commands = {
  read: () => import('./commands/read.js'),
  list: () => import('./commands/list.js'),
  write: () => import('./commands/write.js'),
  delete: () => import('./commands/delete.js'),
}

const cliArgs = process.argv.slice(2)
const fast = process.env.SECRETFS_CLI_NO_FAST_PATH ? undefined : fastCommand(cliArgs)
if (cliArgs[0] === 'exec') await runCommand(() => import('./commands/exec.js'), cliArgs.slice(1))
else if (fast) await runCommand(commands[fast.name], fast.args)
else await runYargs()

/** The version in secretfs's package.json (found above this file, from the source or the build). */
async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises')
  const path = await import('node:path')
  const { fileURLToPath } = await import('node:url')
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string
        version?: string
      }
      if (pkg.name === 'secretfs' && pkg.version) return pkg.version
    } catch {}
    if (path.dirname(dir) === dir) return 'unknown'
  }
}

async function runYargs(): Promise<void> {
  const { default: yargs } = await import('yargs')
  const { hideBin } = await import('yargs/helpers')
  const address = <T>(y: Argv<T>) =>
    y.option('address', {
      type: 'string',
      describe: "The daemon's socket (default: $SECRETFS_ADDR, else where a daemon started with defaults listens)",
    })
  const format = <T>(y: Argv<T>, choices = ['table', 'json']) =>
    y.option('format', { choices, default: 'table', describe: 'Output format' })
  const unlockFlags = <T>(y: Argv<T>) =>
    y
      .option('passphrase-file', {
        type: 'string',
        describe: 'Read the passphrase from this file (one trailing line break is dropped)',
      })
      .option('key-file', { type: 'string', describe: 'Use the 32-byte key in this file' })
      .conflicts('passphrase-file', 'key-file')
  const storageFile = <T>(y: Argv<T>) =>
    y.option('storage-file', {
      type: 'string',
      describe:
        'Use the PostgreSQL store whose postgres:// URL is in this file, yours and closed to others (default: $SECRETFS_STORAGE, else SQLite in the data directory)',
    })
  const run = (load: () => Promise<CommandModule>) => (argv: unknown) => runCommand(load, argv)
  // yargs drops a lone `-` (it takes it for an option that never comes), and `write PATH -` is how
  // standard input is stored as it is. It travels through yargs as a NUL-led stand-in, which no
  // command-line argument can be, and becomes `-` again for the command.
  const STDIN = '\0-'
  const given = hideBin(process.argv)
  // Before yargs, which would quote an unknown argument back, URL and password with it.
  try {
    ;(await import('./storage-input.js')).refuseUrlArguments(given)
  } catch (e) {
    const { reportError } = await import('./report-error.js')
    process.exitCode = reportError(e)
    return
  }
  const argv = given[0] === 'write' ? given.map((a) => (a === '-' ? STDIN : a)) : given
  const dash = (a: unknown) => (a === STDIN ? '-' : a)
  const runWrite = (parsed: Record<string, unknown>) =>
    runCommand(
      commands.write,
      Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, Array.isArray(v) ? v.map(dash) : dash(v)])),
    )

  await yargs(argv)
    .scriptName('secretfs')
    .usage('Usage: secretfs <command> [options]\n\nExit codes: 0 done, 1 failed, 2 usage error.')
    .command(
      'server',
      'Run the daemon: mount the filesystem and serve the control socket',
      (y) =>
        storageFile(y)
          .option('dev', {
            type: 'boolean',
            default: false,
            describe: 'In-memory store, unsealed, for trying things out',
          })
          .option('mountpoint', {
            type: 'string',
            describe:
              'Directory to mount the secrets filesystem on (default: $SECRETFS_MOUNTPOINT; none: serve only the control API)',
          })
          .option('data', {
            type: 'string',
            describe:
              'Data directory of the store (default: $SECRETFS_DATA, else $XDG_DATA_HOME/secretfs or ~/.local/share/secretfs)',
          })
          .option('address', {
            type: 'string',
            describe:
              'The control socket to listen on (default: $SECRETFS_ADDR, else $XDG_RUNTIME_DIR/secretfs/secretfs.sock or the data directory)',
          })
          .option('passphrase-file', {
            type: 'string',
            describe: 'Unseal with the passphrase in this file (a new store is created with it)',
          })
          .option('key-file', {
            type: 'string',
            describe: 'Unseal with the 32-byte key in this file (a new store is created with it)',
          })
          .option('fuse', {
            type: 'string',
            choices: ['lowlevel', 'fuse-native'],
            describe:
              "The FUSE binding: secretfs's own on libfuse 3 (lowlevel, the default) or fuse-native on libfuse 2 (default: $SECRETFS_FUSE)",
          })
          .option('sealed', {
            type: 'boolean',
            default: false,
            describe: 'Start sealed; unseal later with `secretfs unseal`',
          }),
      async (argv) => (await import('./commands/server.js')).run(argv),
    )
    .command(
      'init',
      'Create a new store in the data directory or PostgreSQL (asks for a passphrase twice, or use a file)',
      (y) =>
        unlockFlags(
          storageFile(y).option('data', {
            type: 'string',
            describe:
              'Data directory (default: $SECRETFS_DATA, else $XDG_DATA_HOME/secretfs or ~/.local/share/secretfs)',
          }),
        ),
      run(() => import('./commands/init.js')),
    )
    .command(
      'migrate',
      'Copy the store, as it is stored (encrypted), from SQLite to PostgreSQL (--to postgres) or back (--from postgres)',
      (y) =>
        storageFile(y)
          .option('to', { choices: ['postgres', 'sqlite'], describe: 'The kind of store to copy into' })
          .option('from', { choices: ['postgres', 'sqlite'], describe: 'The kind of store to copy from' })
          .option('data', {
            type: 'string',
            describe:
              'Data directory of the SQLite store (default: $SECRETFS_DATA, else $XDG_DATA_HOME/secretfs or ~/.local/share/secretfs)',
          }),
      run(() => import('./commands/migrate.js')),
    )
    .command(
      'status',
      'Show whether the daemon is initialised and sealed',
      (y) => format(address(y)),
      run(() => import('./commands/status.js')),
    )
    .command(
      'seal',
      'Seal: the daemon forgets its keys until unsealed',
      (y) => address(y),
      run(() => import('./commands/seal.js')),
    )
    .command(
      'unseal',
      'Unseal the daemon (asks for the passphrase, or use a file)',
      (y) => format(unlockFlags(address(y))),
      run(() => import('./commands/unseal.js')),
    )
    .command(
      'rotate',
      'Rotate the encryption key (new writes use the new key)',
      (y) => format(address(y)),
      run(() => import('./commands/rotate.js')),
    )
    .command(
      'mount <type>',
      'Mount a secret backend',
      (y) =>
        address(y)
          .positional('type', { type: 'string', demandOption: true, describe: 'Backend type, such as generic' })
          .option('path', { type: 'string', describe: 'Where to mount it (default: the type)' })
          .option('description', { type: 'string', describe: 'A description shown by secretfs mounts' })
          .option('default-lease-ttl', {
            type: 'string',
            describe: 'Default lease TTL: seconds or a duration such as 1h',
          })
          .option('max-lease-ttl', { type: 'string', describe: 'Max lease TTL: seconds or a duration such as 24h' }),
      run(() => import('./commands/mount.js')),
    )
    .command(
      'mounts',
      'List the mounted backends',
      (y) => format(address(y)),
      run(() => import('./commands/mounts.js')),
    )
    .command(
      'unmount <path>',
      'Unmount a backend: its secrets are revoked and its data deleted',
      (y) => address(y).positional('path', { type: 'string', demandOption: true }),
      run(() => import('./commands/unmount.js')),
    )
    .command(
      'remount <from> <to>',
      'Move a mounted backend to a new path (data kept, leases revoked)',
      (y) =>
        address(y)
          .positional('from', { type: 'string', demandOption: true })
          .positional('to', { type: 'string', demandOption: true }),
      run(() => import('./commands/remount.js')),
    )
    .command(
      'write <path> [data..]',
      'Write a secret: key=value pairs (key=@file reads a file, key=- stdin), or - to store stdin as it is',
      (y) =>
        address(y)
          .positional('path', { type: 'string', demandOption: true })
          .positional('data', { type: 'string', array: true, default: [] })
          .option('force', {
            alias: 'f',
            type: 'boolean',
            default: false,
            describe: 'Write even with no key=value pairs (as for rotate-root/NAME)',
          }),
      runWrite,
    )
    .command(
      'read <path>',
      'Read a secret',
      (y) =>
        format(address(y).positional('path', { type: 'string', demandOption: true }), [
          'table',
          'json',
          'raw',
          'env',
        ]).option('field', {
          type: 'string',
          describe: 'Print only this field',
        }),
      run(commands.read),
    )
    .command(
      'list <path>',
      'List the secrets and directories under a path',
      (y) => format(address(y).positional('path', { type: 'string', demandOption: true })),
      run(commands.list),
    )
    .command(
      'delete <path>',
      'Delete a secret',
      (y) => address(y).positional('path', { type: 'string', demandOption: true }),
      run(commands.delete),
    )
    // Listed for --help only: main.ts hands `exec` to its own parser before yargs runs.
    .command('exec', 'Run a program with secrets in its environment: exec PATH... -- CMD [ARGS...] (see exec --help)')
    .command(
      'revoke <lease-id>',
      "Revoke a secret by its lease ID, as `read` printed it (today's form: secretfs lease revoke)",
      (y) =>
        address(y)
          .positional('lease-id', { type: 'string', demandOption: true })
          .option('prefix', { type: 'boolean', default: false, describe: 'Revoke every lease under this prefix' })
          .option('force', {
            type: 'boolean',
            default: false,
            describe: 'With --prefix: drop the leases without asking the backend (for an account that is gone)',
          }),
      run(() => import('./commands/revoke.js')),
    )
    .command(
      'renew <lease-id> [increment]',
      "Renew a lease: increment is seconds or a duration such as 1h (today's form: secretfs lease renew)",
      (y) =>
        format(address(y))
          .positional('lease-id', { type: 'string', demandOption: true })
          .positional('increment', { type: 'string' }),
      run(() => import('./commands/renew.js')),
    )
    .command(
      'lease <action> [id]',
      'Leases: list PREFIX, lookup ID, renew ID [--increment T], revoke ID [--prefix [--force]]',
      (y) =>
        format(address(y))
          .positional('action', { choices: ['list', 'lookup', 'renew', 'revoke'] as const, demandOption: true })
          .positional('id', { type: 'string', describe: 'A lease ID, or a prefix for list and --prefix' })
          .option('increment', { type: 'string', describe: 'renew: seconds or a duration such as 1h' })
          .option('prefix', { type: 'boolean', default: false, describe: 'revoke: every lease under the prefix' })
          .option('force', { type: 'boolean', default: false, describe: 'revoke --prefix: without asking the backend' })
          .check((a) => {
            if (a.action !== 'list' && !a.id) throw new UsageError(`lease ${a.action} needs a lease ID`)
            return true
          }),
      run(() => import('./commands/lease.js')),
    )
    .completion('completion', 'Print a shell completion script (bash or zsh): secretfs completion >> ~/.bashrc')
    .demandCommand(1, 'Name a command; see secretfs --help')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version(await packageVersion())
    .fail((message, error) => {
      // What a .check() threw is a usage error; any other is the program's own.
      if (error && !(error instanceof UsageError)) throw error
      process.stderr.write(`Error: ${error?.message ?? message}\nSee: secretfs --help, or secretfs COMMAND --help\n`)
      process.exit(2)
    })
    .parseAsync()
}
