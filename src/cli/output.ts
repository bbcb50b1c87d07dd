// How commands print: Vault's Key/Value tables, lists, JSON, and raw bytes, all to stdout.

export type Format = 'table' | 'json' | 'raw'

export function print(text: string): void {
  process.stdout.write(text)
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

/** A field's value as text: strings as they are, anything else as JSON. */
export function fieldText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** Vault's two-column table under a Key / Value header. */
export function keyValueTable(rows: [string, unknown][]): string {
  const width = Math.max(3, ...rows.map(([k]) => k.length)) + 4
  const line = (k: string, v: string) => (k.padEnd(width) + v).trimEnd() + '\n'
  // Vault prints a null (an IAM user's security_token) as Go's <nil>.
  const text = (v: unknown) => (v === null ? '<nil>' : fieldText(v))
  return line('Key', 'Value') + line('---', '-----') + rows.map(([k, v]) => line(k, text(v))).join('')
}

/** Keys under a Keys header, as `vault list` prints them. */
export function keysTable(keys: string[]): string {
  return 'Keys\n----\n' + keys.map((k) => k + '\n').join('')
}
