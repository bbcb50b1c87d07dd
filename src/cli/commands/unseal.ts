// `secretfs unseal [--passphrase-file FILE | --key-file FILE]`: asks at the terminal otherwise.

import { connect } from '../address.js'
import { doing } from '../cli-error.js'
import { print, printJson, type Format } from '../output.js'
import { readUnlock, wipe } from '../unlock-input.js'
import { statusTable } from './status.js'

export interface UnsealArgs {
  passphraseFile?: string
  keyFile?: string
  format: Format
  address?: string
}

export async function run(args: UnsealArgs): Promise<void> {
  const client = connect(args.address)
  const { socketPath } = client
  // Ask nothing of a daemon that is not there or already unsealed.
  let status = await client.sealStatus()
  if (status.sealed) {
    const unlock = await readUnlock({
      ...(args.passphraseFile !== undefined && { passphraseFile: args.passphraseFile }),
      ...(args.keyFile !== undefined && { keyFile: args.keyFile }),
    })
    const request =
      unlock.kind === 'key-file'
        ? { key: Buffer.from(unlock.key).toString('base64') }
        : { passphrase: Buffer.from(unlock.passphrase).toString('utf8') }
    try {
      status = await doing('unsealing', client.unseal(Buffer.from(JSON.stringify(request))))
    } finally {
      wipe(unlock)
    }
  } else if (args.format !== 'json') process.stderr.write('secretfs is already unsealed.\n')
  if (args.format === 'json') return printJson({ ...status, address: socketPath })
  print(statusTable(status, socketPath))
}
