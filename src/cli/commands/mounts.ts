// `secretfs mounts [--format table|json]`: the mount table.

import { formatMountsTable } from '../../format/mounts-table.js'
import { connect } from '../address.js'
import { doing } from '../cli-error.js'
import { print, printJson, type Format } from '../output.js'

export interface MountsArgs {
  format: Format
  address?: string
}

export async function run(args: MountsArgs): Promise<void> {
  const mounts = await doing('listing the mounts', connect(args.address).mounts())
  if (args.format === 'json') return printJson(mounts)
  print(
    formatMountsTable(Object.entries(mounts).map(([path, m]) => ({ path, type: m.type, description: m.description }))),
  )
}
