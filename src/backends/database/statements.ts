// The SQL a role runs, as Vault's database plugins take it: statements with `{{name}}`,
// `{{password}}`, `{{expiration}}` (and `{{username}}`, the same as `{{name}}`) filled in. Every
// value filled in is made by secretfs (a generated name, a generated password, a time) or checked
// to be a plain identifier (a static role's user), so that none can end a quoted literal or
// identifier. Which placeholders a statement may use is checked when it is written.

import { invalid } from '../../errors.js'

export type Placeholder = 'name' | 'username' | 'password' | 'expiration'

export type Values = Partial<Record<Placeholder, string>>

/** What each field's statements may use, as Vault's PostgreSQL plugin fills them. */
export const PLACEHOLDERS = {
  creation_statements: ['name', 'username', 'password', 'expiration'],
  revocation_statements: ['name', 'username'],
  rollback_statements: ['name', 'username'],
  renew_statements: ['name', 'username', 'expiration'],
  rotation_statements: ['name', 'username', 'password'],
  root_rotation_statements: ['name', 'username', 'password'],
} as const satisfies Record<string, readonly Placeholder[]>

export type StatementField = keyof typeof PLACEHOLDERS

export const DEFAULT_RENEW = [`ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}';`]
export const DEFAULT_ROTATION = [`ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}';`]
export const DEFAULT_ROOT_ROTATION = [`ALTER USER "{{username}}" WITH PASSWORD '{{password}}';`]

/** Refuses a `{{…}}` that `field`'s statements cannot use. */
export function checkStatements(field: StatementField, statements: readonly string[]): void {
  const allowed: readonly string[] = PLACEHOLDERS[field]
  for (const s of statements)
    for (const m of s.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)) {
      const name = m[1]!
      if (!allowed.includes(name) || m[0] !== `{{${name}}}`)
        throw invalid(
          `${field} may use ${allowed.map((p) => `{{${p}}}`).join(', ')}; one of its statements has another placeholder`,
        )
    }
}

export function render(statements: readonly string[], values: Values): string[] {
  return statements.map((s) =>
    s.replace(/\{\{(name|username|password|expiration)\}\}/g, (whole, p: Placeholder) => {
      const v =
        p === 'username'
          ? (values.username ?? values.name)
          : p === 'name'
            ? (values.name ?? values.username)
            : values[p]
      if (v === undefined) throw invalid(`${whole} has no value in this statement`)
      return v
    }),
  )
}

/** A time as Vault's plugins give {{expiration}}: '2026-11-29 17:04:05+0000', which PostgreSQL reads. */
export function expirationText(when: Date): string {
  return when
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, '+0000')
}

/**
 * A database user's name as a statement may hold it: PostgreSQL's 63 bytes, starting with a
 * letter or '_', then letters, digits and `_ $ . @ -` (no quote, backslash or space).
 */
export const DB_USERNAME = /^[A-Za-z_][A-Za-z0-9_$.@-]{0,62}$/

export function checkDbUsername(field: string, username: string): void {
  if (!DB_USERNAME.test(username))
    throw invalid(
      `${field} must be a PostgreSQL user name of at most 63 characters: a letter or _, then letters, digits and _ $ . @ -`,
    )
}
