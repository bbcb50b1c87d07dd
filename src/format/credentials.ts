// One credential, in the forms programs take it: the AWS CLI's and SDKs' `credential_process`
// JSON, shell `export` lines (as `aws configure export-credentials --format env` prints them, quoted
// for `eval`), and environment variables for `secretfs exec`. Used by the filesystem's files, the
// CLI's `--format env` and `exec`, so that every form says the same.

import { invalid } from '../errors.js'

export interface AwsCredential {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
  expiration?: Date
}

/** The AWS credential in a secret's fields (the aws backend's access_key, secret_key, security_token). */
export function awsCredentialOf(fields: Record<string, unknown>, expiration?: Date): AwsCredential | undefined {
  const { access_key: id, secret_key: secret, security_token: token } = fields
  if (typeof id !== 'string' || typeof secret !== 'string' || id === '' || secret === '') return undefined
  return {
    accessKeyId: id,
    secretAccessKey: secret,
    ...(typeof token === 'string' && token !== '' && { sessionToken: token }),
    ...(expiration && { expiration }),
  }
}

/** What `credential_process` prints: Version 1, the keys, and when they expire (ISO 8601). */
export function credentialProcessJson(c: AwsCredential): string {
  return (
    JSON.stringify({
      Version: 1,
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secretAccessKey,
      ...(c.sessionToken && { SessionToken: c.sessionToken }),
      ...(c.expiration && { Expiration: c.expiration.toISOString() }),
    }) + '\n'
  )
}

/** The AWS_* variables of a credential, in the order the aws CLI exports them. */
export function awsVariables(c: AwsCredential): [string, string][] {
  const vars: [string, string][] = [
    ['AWS_ACCESS_KEY_ID', c.accessKeyId],
    ['AWS_SECRET_ACCESS_KEY', c.secretAccessKey],
  ]
  if (c.sessionToken) vars.push(['AWS_SESSION_TOKEN', c.sessionToken])
  if (c.expiration) vars.push(['AWS_CREDENTIAL_EXPIRATION', c.expiration.toISOString()])
  return vars
}

/**
 * Variables that, inherited beside `vars` (an AWS credential's), would be used instead of it or
 * mixed with it: a profile (the JavaScript SDK prefers AWS_PROFILE to keys in the environment),
 * and a session token or expiry of some earlier credential, which would break an IAM user's keys.
 * Empty when `vars` is not an AWS credential.
 */
export function awsShadowingVariables(vars: [string, string][]): string[] {
  const set = new Set(vars.map(([name]) => name))
  if (!set.has('AWS_ACCESS_KEY_ID')) return []
  const shadowing = [
    'AWS_PROFILE',
    'AWS_DEFAULT_PROFILE',
    'AWS_SESSION_TOKEN',
    'AWS_SECURITY_TOKEN',
    'AWS_CREDENTIAL_EXPIRATION',
  ]
  return shadowing.filter((name) => !set.has(name))
}

/** A PostgreSQL login as libpq's variables, which psql and most PostgreSQL clients read. */
export function postgresVariables(fields: Record<string, unknown>): [string, string][] | undefined {
  const { username, password } = fields
  if (typeof username !== 'string' || typeof password !== 'string') return undefined
  return [
    ['PGUSER', username],
    ['PGPASSWORD', password],
  ]
}

/**
 * A field's name as an environment variable: upper-cased, every character other than a letter,
 * digit or '_' made '_', after `prefix`; one that would start with a digit gets a leading '_'.
 */
export function variableName(field: string, prefix = ''): string {
  const name = (prefix + field).toUpperCase().replace(/[^A-Z0-9_]/g, '_')
  return /^[0-9]/.test(name) ? '_' + name : name
}

/**
 * A secret's fields as variables: an AWS credential as AWS_*, a PostgreSQL login (`credential`
 * 'postgresql', as its backend says) as PGUSER and PGPASSWORD, any other JSON object field by
 * field (values that are not strings as JSON). Two fields that make one name are refused.
 */
export function fieldVariables(
  fields: Record<string, unknown>,
  options: { prefix?: string; expiration?: Date; credential?: string } = {},
): [string, string][] {
  const aws = awsCredentialOf(fields, options.expiration)
  if (aws && !options.prefix) return awsVariables(aws)
  const postgres = options.credential === 'postgresql' && !options.prefix && postgresVariables(fields)
  if (postgres) return postgres
  const seen = new Map<string, string>()
  const vars: [string, string][] = []
  for (const [field, value] of Object.entries(fields)) {
    if (value === null) continue
    const name = variableName(field, options.prefix)
    const other = seen.get(name)
    if (other !== undefined)
      throw invalid(`the fields ${JSON.stringify(other)} and ${JSON.stringify(field)} both make the variable ${name}`)
    seen.set(name, field)
    vars.push([name, typeof value === 'string' ? value : JSON.stringify(value)])
  }
  return vars
}

/** `export NAME=VALUE` lines, each value quoted for the shell where it needs it. */
export function exportLines(vars: [string, string][]): string {
  return vars.map(([name, value]) => `export ${name}=${shellQuote(value)}\n`).join('')
}

/** A word the shell reads back as exactly `value`. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value
  return `'${value.replace(/'/g, `'\\''`)}'`
}
