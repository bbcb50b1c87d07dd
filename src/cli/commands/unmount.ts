// `secretfs unmount PATH`: revokes the mount's secrets and deletes its data.

import { connect } from '../address.js'
import { doing } from '../cli-error.js'
import { print } from '../output.js'

export interface UnmountArgs {
  path: string
  address?: string
}

export async function run(args: UnmountArgs): Promise<void> {
  await doing(`unmounting '${args.path}'`, connect(args.address).unmount(args.path))
  print(`Successfully unmounted '${args.path}'!\n`)
}
