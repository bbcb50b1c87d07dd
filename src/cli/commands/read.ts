// `secretfs read PATH [--field NAME] [--format table|json|raw|env]`

import { ApiError } from '../../api/api-client.js'
import { connect } from '../address.js'
import { CliError, ContextError } from '../cli-error.js'
import { awsShadowingVariables, exportLines } from '../../format/credentials.js'
import { goDuration } from '../../format/lease.js'
import { fieldText, keyValueTable, print, printJson, type Format } from '../output.js'

export interface ReadArgs {
  path: string
  field?: string
  format: Format | 'env'
  address?: string
}

export async function run(args: ReadArgs): Promise<void> {
  const client = connect(args.address)
  const path = args.path.replace(/^\/+/, '')
  if (args.format === 'env') {
    if (args.field !== undefined) throw new CliError('--field and --format env do not go together')
    const { readSecret, secretVariables } = await import('../secret-env.js')
    const vars = secretVariables(await readSecret(client, path))
    const unset = awsShadowingVariables(vars)
    print(exportLines(vars) + (unset.length ? `unset ${unset.join(' ')}\n` : ''))
    return
  }
  try {
    if (args.format === 'raw') {
      if (args.field !== undefined) throw new CliError('--field and --format raw do not go together')
      process.stdout.write(await client.readRaw(path))
      return
    }
    const secret = await client.read(path)
    const binary = secret.encoding === 'base64'
    if (args.field !== undefined) {
      if (!Object.hasOwn(secret.data, args.field))
        throw new CliError(`no field ${JSON.stringify(args.field)} at ${path}`)
      const value = secret.data[args.field]
      if (args.format === 'json') return printJson(value)
      if (binary && args.field === 'value') {
        process.stdout.write(Buffer.from(value as string, 'base64'))
        return
      }
      const text = fieldText(value)
      print(process.stdout.isTTY && !text.endsWith('\n') ? text + '\n' : text)
      return
    }
    if (args.format === 'json') return printJson(secret)
    const rows: [string, unknown][] = []
    if (secret.lease_id)
      rows.push(
        ['lease_id', secret.lease_id],
        ['lease_duration', goDuration(secret.lease_duration)],
        ['lease_renewable', secret.renewable],
      )
    for (const key of Object.keys(secret.data).sort()) rows.push([key, secret.data[key]])
    print(keyValueTable(rows))
    if (binary)
      process.stderr.write('(the value is not UTF-8 text: shown base64-encoded; --format raw prints its bytes)\n')
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) throw new CliError(`No value found at ${path}`)
    throw e instanceof ApiError ? new ContextError(`reading ${path}`, e) : e
  }
}
