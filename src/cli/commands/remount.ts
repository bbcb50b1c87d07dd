// `secretfs remount FROM TO`: moves a mount; its data stays, its leases are revoked.

import { connect } from '../address.js'
import { doing } from '../cli-error.js'
import { print } from '../output.js'

export interface RemountArgs {
  from: string
  to: string
  address?: string
}

export async function run(args: RemountArgs): Promise<void> {
  await doing(`remounting '${args.from}' to '${args.to}'`, connect(args.address).remount(args.from, args.to))
  print(`Successfully remounted '${args.from}' to '${args.to}'!\n`)
}
