// What a secret gives a program's environment, for `read --format env` and `exec`: one read of
// the stored value (a JSON object of fields, or anything else) with its lease, and the variables
// it makes.

import { ApiError, type ApiClient } from '../api/api-client.js'
import { decodeUtf8, isFields, type Fields } from '../core/secret-data.js'
import { fieldVariables } from '../format/credentials.js'
import { CliError, ContextError } from './cli-error.js'

export interface SecretValue {
  path: string
  /** The fields, when the value is a JSON object. */
  fields?: Fields
  /** The value as text, when it is UTF-8 text and not a JSON object. */
  text?: string
  /** '' when the secret has no lease. */
  leaseId: string
  /** When the lease ends, when it has one. */
  expiration?: Date
  /** The kind of credential its fields are, when the backend says ('postgresql'). */
  credential?: string
}

/** Reads the secret at `path` (a missing one is a CliError that names it). */
export async function readSecret(client: ApiClient, path: string): Promise<SecretValue> {
  const started = Date.now()
  let raw
  try {
    raw = await client.readRawSecret(path)
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) throw new CliError(`No value found at ${path}`)
    throw e instanceof ApiError ? new ContextError(`reading ${path}`, e) : e
  }
  const secret: SecretValue = { path, leaseId: raw.leaseId, ...(raw.credential && { credential: raw.credential }) }
  if (raw.leaseId !== '') {
    // The daemon counted the duration (rounded to a second) at some moment after `started`, so
    // the lease ends no sooner than this: an expiry told to a program must never be late.
    const ends = started + (raw.leaseDuration - 0.5) * 1000
    secret.expiration = new Date(Math.floor(ends / 1000) * 1000)
  }
  const text = decodeUtf8(raw.value)
  raw.value.fill(0)
  if (text === undefined) return secret
  const trimmed = text.trim()
  if (trimmed.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(trimmed)
      if (isFields(parsed)) return { ...secret, fields: parsed }
    } catch {
      // Not JSON after all: the value is text like any other.
    }
  }
  return { ...secret, text }
}

/** The variables of a secret's fields (see fieldVariables); a value that is not a JSON object is refused. */
export function secretVariables(secret: SecretValue, prefix = ''): [string, string][] {
  if (!secret.fields)
    throw new CliError(
      `the value at ${secret.path} is not a JSON object of fields, so it makes no variables`,
      `Write it as fields (secretfs write ${secret.path} NAME=VALUE ...), or, with exec, give its text to one variable: --env NAME=${secret.path}`,
    )
  try {
    return fieldVariables(secret.fields, {
      ...(prefix !== '' && { prefix }),
      ...(secret.expiration && { expiration: secret.expiration }),
      ...(secret.credential && { credential: secret.credential }),
    })
  } catch (e) {
    throw new ContextError(`making variables of ${secret.path}`, e)
  }
}

/**
 * One value of a secret for one variable: the field `field`, else the text of a value that is not
 * a JSON object, else the only field of one. Null for a field that is null (no variable).
 */
export function secretValue(secret: SecretValue, field?: string): string | null {
  const { path, fields } = secret
  const show = (v: unknown) => (v === null ? null : typeof v === 'string' ? v : JSON.stringify(v))
  if (field !== undefined) {
    if (!fields)
      throw new CliError(`the value at ${path} is not a JSON object, so it has no field ${JSON.stringify(field)}`)
    if (!Object.hasOwn(fields, field)) throw new CliError(`no field ${JSON.stringify(field)} at ${path}`)
    return show(fields[field])
  }
  if (fields) {
    const names = Object.keys(fields)
    if (names.length === 1) return show(fields[names[0]!])
    throw new CliError(
      `the secret at ${path} has ${names.length} fields: name the one to use`,
      `Use: --env NAME=${path}#FIELD`,
    )
  }
  if (secret.text === undefined)
    throw new CliError(`the value at ${path} is not UTF-8 text, so no environment variable can hold it`)
  return secret.text
}
