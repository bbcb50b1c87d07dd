// `secretfs rotate [--format table|json]`: a new encryption key for new writes; old data stays readable.

import { connect } from '../address.js'
import { doing } from '../cli-error.js'
import { print, printJson, type Format } from '../output.js'

export interface RotateArgs {
  format: Format
  address?: string
}

export async function run(args: RotateArgs): Promise<void> {
  const term = await doing('rotating the key', connect(args.address).rotate())
  if (args.format === 'json') return printJson({ term })
  print(`Success! Rotated the encryption key; the key term is now ${term}.\n`)
}
