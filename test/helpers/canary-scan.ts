// Test helper: where a canary (a secret's name or value, a passphrase) could show in raw bytes of a
// store: as UTF-8, UTF-16, base64, or hex (as pg_dump writes bytea).

/** The canaries of `needles` found in `bytes`, each with the form it was found in. */
export function findCanaries(bytes: Buffer, needles: readonly string[]): string[] {
  const found: string[] = []
  for (const c of needles) {
    const forms: [string, Buffer][] = [
      ['utf8', Buffer.from(c)],
      ['utf16', Buffer.from(c, 'utf16le')],
      ['base64', Buffer.from(Buffer.from(c).toString('base64'))],
      ['hex', Buffer.from(Buffer.from(c).toString('hex'))],
    ]
    for (const [form, n] of forms) if (bytes.indexOf(n) >= 0) found.push(`${c} (${form})`)
  }
  return found
}
