// The everyday data commands (read, list, write, delete) parsed without yargs, whose import alone
// costs more than the whole start-up budget. Only a plain, valid command line is taken here;
// anything else (help, an unknown flag, a bad value, `--`) is left to yargs, which parses the same
// options (declared in main.ts) and says what is wrong.

import { parseArgs } from 'node:util'

export interface FastCommand {
  name: 'read' | 'list' | 'write' | 'delete'
  args: Record<string, unknown>
}

interface Spec {
  options: Record<string, { choices?: string[]; default?: string }>
  /** Positional names; the last one takes the rest when `rest` is set. */
  positionals: string[]
  rest?: string
}

const ADDRESS = { address: {} }
const SPECS: Record<FastCommand['name'], Spec> = {
  read: {
    options: { ...ADDRESS, field: {}, format: { choices: ['table', 'json', 'raw', 'env'], default: 'table' } },
    positionals: ['path'],
  },
  list: { options: { ...ADDRESS, format: { choices: ['table', 'json'], default: 'table' } }, positionals: ['path'] },
  delete: { options: ADDRESS, positionals: ['path'] },
  write: { options: ADDRESS, positionals: ['path'], rest: 'data' },
}

export function fastCommand(argv: string[]): FastCommand | undefined {
  const name = argv[0] as FastCommand['name']
  const spec = Object.hasOwn(SPECS, name) ? SPECS[name] : undefined
  if (!spec || argv.includes('--')) return undefined
  let parsed
  try {
    parsed = parseArgs({
      args: argv.slice(1),
      options: Object.fromEntries(Object.keys(spec.options).map((k) => [k, { type: 'string' as const }])),
      allowPositionals: true,
      strict: true,
    })
  } catch {
    return undefined
  }
  const { values, positionals } = parsed
  if (positionals.length < spec.positionals.length) return undefined
  if (!spec.rest && positionals.length > spec.positionals.length) return undefined
  const args: Record<string, unknown> = {}
  for (const [key, o] of Object.entries(spec.options)) {
    const v = values[key]
    if (v === undefined) {
      if (o.default !== undefined) args[key] = o.default
    } else if (o.choices && !o.choices.includes(v)) return undefined
    else args[key] = v
  }
  spec.positionals.forEach((p, i) => (args[p] = positionals[i]))
  if (spec.rest) args[spec.rest] = positionals.slice(spec.positionals.length)
  return { name, args }
}
