// `secretfs list PATH [--format table|json]`

import { ApiError } from '../../api/api-client.js'
import { connect } from '../address.js'
import { CliError, ContextError } from '../cli-error.js'
import { keysTable, print, printJson, type Format } from '../output.js'

export interface ListArgs {
  path: string
  format: Format
  address?: string
}

export async function run(args: ListArgs): Promise<void> {
  const path = args.path.replace(/^\/+/, '')
  let keys: string[]
  try {
    keys = await connect(args.address).list(path)
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) throw new CliError(`No entries found at ${path}`)
    throw e instanceof ApiError ? new ContextError(`listing ${path}`, e) : e
  }
  if (args.format === 'json') return printJson(keys)
  if (keys.length === 0) {
    process.stderr.write(`No entries found at ${path}\n`)
    return
  }
  print(keysTable(keys))
}
