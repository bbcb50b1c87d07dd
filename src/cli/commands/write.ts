// `secretfs write PATH key=value ...`: key=@file reads a file, key=- reads stdin, and a lone `-`
// stores stdin as the raw value, byte for byte. `-f` writes no fields at all.

import { readFile } from 'node:fs/promises'
import { connect } from '../address.js'
import { CliError, UsageError, doing } from '../cli-error.js'
import { decodeUtf8 } from '../../core/secret-data.js'
import { print } from '../output.js'

export interface WriteArgs {
  path: string
  data: string[]
  /** Allows writing no fields at all: an operation such as rotate-root/NAME takes none. */
  force?: boolean
  address?: string
}

export async function run(args: WriteArgs): Promise<void> {
  const path = args.path.replace(/^\/+/, '')
  const client = connect(args.address)
  const data = args.data.map(String)
  if (data.length === 0 && !args.force)
    throw new UsageError(
      'nothing to write',
      'Give key=value pairs, or - to store standard input as it is, or -f to write no fields (as rotate-root/NAME takes).',
    )
  if (data.includes('-')) {
    if (data.length > 1)
      throw new UsageError('a lone - (the raw value from stdin) cannot be mixed with key=value pairs')
    const value = await readStdin()
    await doing(`writing ${path}`, client.writeRaw(path, value))
    value.fill(0)
  } else {
    await doing(`writing ${path}`, client.write(path, await parseFields(data)))
  }
  print(`Success! Data written to: ${path}\n`)
}

/**
 * key=value pairs into fields. Messages name the argument's position, never its text. A Map until
 * the end: a key is data, so `__proto__=x` is a field like any other, not a prototype.
 */
export async function parseFields(pairs: string[]): Promise<Record<string, string>> {
  const fields = new Map<string, string>()
  let stdinUsed = false
  for (const [i, pair] of pairs.entries()) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new UsageError(`argument ${i + 1} after the path is not key=value`)
    // Node gives an argument that is not UTF-8 with U+FFFD in place of what it could not decode.
    if (pair.includes('\uFFFD'))
      throw new CliError(
        `argument ${i + 1} after the path is not UTF-8 text (or holds the character U+FFFD)`,
        'Store bytes as they are with: secretfs write PATH - < FILE',
      )
    const key = pair.slice(0, eq)
    const value = pair.slice(eq + 1)
    if (value === '-') {
      if (stdinUsed) throw new UsageError('only one field can be read from stdin (key=-)')
      stdinUsed = true
      fields.set(key, text(await readStdin(), `the standard input for ${key}`))
    } else if (value.startsWith('@')) {
      const file = value.slice(1)
      if (file === '') throw new UsageError(`${key}=@ names no file`)
      let bytes: Buffer
      try {
        bytes = await readFile(file)
      } catch (e) {
        throw new CliError(`cannot read ${file} for ${key} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
      }
      fields.set(key, text(bytes, `${file} (for ${key})`))
    } else fields.set(key, value)
  }
  return Object.fromEntries(fields)
}

function text(bytes: Buffer, what: string): string {
  const s = decodeUtf8(bytes)
  if (s === undefined)
    throw new CliError(`${what} is not UTF-8 text`, 'Store bytes as they are with: secretfs write PATH - < FILE')
  return s
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
