// `secretfs seal`: the daemon forgets its keys; the mount and the API refuse until unsealed.

import { connect } from '../address.js'
import { doing } from '../cli-error.js'
import { print } from '../output.js'

export interface SealArgs {
  address?: string
}

export async function run(args: SealArgs): Promise<void> {
  await doing('sealing', connect(args.address).seal())
  print('Success! secretfs is sealed.\n')
}
