// roles/NAME: a dynamic role, as Vault's database/roles/NAME: which database it uses and the SQL
// that creates, renews, revokes and rolls back each user it makes. A write updates the fields
// given and keeps the rest.

import { invalid, notFound } from '../../errors.js'
import type { StorageView } from '../../barrier/barrier.js'
import type { FieldData } from '../framework/fields.js'
import { getJson, putJson, type JsonEntry } from '../framework/json-entry.js'
import type { PathSpec } from '../framework/path-backend.js'
import { fieldsValue, fileInfo } from '../framework/present.js'
import type { DatabaseState } from './state.js'
import { checkStatements, type StatementField } from './statements.js'

/** A role as stored; TTLs in seconds (0: the mount's, else the system's). */
export interface DbRole {
  db_name: string
  creation_statements: string[]
  /** Empty: revoke the user's privileges and drop it. */
  revocation_statements: string[]
  rollback_statements: string[]
  /** Empty: ALTER ROLE … VALID UNTIL the new expiration. */
  renew_statements: string[]
  default_ttl: number
  max_ttl: number
}

const STATEMENTS = [
  'creation_statements',
  'revocation_statements',
  'rollback_statements',
  'renew_statements',
] as const satisfies readonly StatementField[]

const storageKey = (name: string) => `role/${name}`

export async function readRole(storage: StorageView, name: string): Promise<JsonEntry<DbRole> | undefined> {
  return getJson<DbRole>(storage, storageKey(name))
}

export async function roleNames(storage: StorageView): Promise<string[]> {
  return (await storage.list('role/')).filter((n) => !n.endsWith('/'))
}

/** The role as Vault's read shows it; written back, it changes nothing. */
function shown(role: DbRole): Record<string, unknown> {
  return { ...role, credential_type: 'password' }
}

function updated(old: DbRole | undefined, d: FieldData): DbRole {
  const role: DbRole = old
    ? { ...old }
    : {
        db_name: '',
        creation_statements: [],
        revocation_statements: [],
        rollback_statements: [],
        renew_statements: [],
        default_ttl: 0,
        max_ttl: 0,
      }
  if (d.has('db_name')) role.db_name = d.string('db_name')!.trim()
  for (const field of STATEMENTS) if (d.has(field)) role[field] = d.list(field)!
  if (d.has('default_ttl')) role.default_ttl = d.number('default_ttl')!
  if (d.has('max_ttl')) role.max_ttl = d.number('max_ttl')!
  const credentialType = d.string('credential_type')
  if (credentialType !== undefined && credentialType !== 'password')
    throw invalid('credential_type must be password, the one type the PostgreSQL plugin makes')
  if (role.db_name === '') throw invalid("'db_name' is a required field: the NAME of a config/NAME")
  if (!/^\w(?:[\w.@-]*\w)?$/.test(role.db_name)) throw invalid('db_name must be the NAME of a config/NAME')
  if (role.creation_statements.length === 0)
    throw invalid(
      "'creation_statements' is a required field: the SQL that makes a user, with {{name}} and {{password}}",
    )
  for (const field of STATEMENTS) checkStatements(field, role[field])
  if (role.max_ttl > 0 && role.default_ttl > role.max_ttl) throw invalid('default_ttl must not exceed max_ttl')
  return role
}

export function rolesPath(state: DatabaseState): PathSpec {
  return {
    pattern: 'roles/:name',
    what: 'a role (roles/NAME)',
    fields: {
      db_name: 'string',
      creation_statements: 'statements',
      revocation_statements: 'statements',
      rollback_statements: 'statements',
      renew_statements: 'statements',
      default_ttl: 'duration',
      max_ttl: 'duration',
      credential_type: 'string',
    },
    async stat({ name }) {
      const entry = await readRole(state.storage, name!)
      return entry && fileInfo(entry, fieldsValue(shown(entry.data)).length)
    },
    async read({ name }) {
      const entry = await readRole(state.storage, name!)
      if (!entry) throw notFound('no such role: write db_name=… creation_statements=… to it')
      return { value: fieldsValue(shown(entry.data)), created: entry.created, modified: entry.modified }
    },
    async write({ name }, d) {
      const old = await readRole(state.storage, name!)
      await putJson(state.storage, storageKey(name!), updated(old?.data, d), old?.created)
    },
    async delete({ name }) {
      if (!(await readRole(state.storage, name!))) throw notFound()
      await state.storage.delete(storageKey(name!))
    },
    names: () => roleNames(state.storage),
  }
}
