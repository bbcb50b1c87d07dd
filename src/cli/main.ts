#!/usr/bin/env node
// The secretfs command. Each command's code is imported only when that command runs, so that a
// quick `secretfs read` does not pay for the filesystem, the store or the HTTP server.

import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'

await yargs(hideBin(process.argv))
  .scriptName('secretfs')
  .command(
    'server',
    'Run the daemon: mount the filesystem and serve the control socket',
    (y) =>
      y
        .option('dev', { type: 'boolean', default: false, describe: 'In-memory store, unsealed, for trying things out' })
        .option('mountpoint', { type: 'string', describe: 'Directory to mount the secrets filesystem on' })
        .option('data', { type: 'string', describe: 'Data directory of the store' })
        .option('passphrase-file', { type: 'string', describe: 'Unseal with the passphrase in this file' })
        .option('key-file', { type: 'string', describe: 'Unseal with the 32-byte key in this file' }),
    async (argv) => (await import('./commands/server.js')).run(argv),
  )
  .demandCommand(1, 'Name a command; see secretfs --help')
  .strict()
  .help()
  .parseAsync()
