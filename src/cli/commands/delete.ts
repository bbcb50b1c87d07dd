// `secretfs delete PATH`

import { connect } from '../address.js'
import { doing } from '../cli-error.js'
import { print } from '../output.js'

export interface DeleteArgs {
  path: string
  address?: string
}

export async function run(args: DeleteArgs): Promise<void> {
  const path = args.path.replace(/^\/+/, '')
  await doing(`deleting ${path}`, connect(args.address).delete(path))
  print(`Success! Data deleted at: ${path}\n`)
}
