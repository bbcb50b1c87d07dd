// static-roles/NAME, static-creds/NAME and rotate-role/NAME, as Vault's: a static role names an
// existing database user; writing it sets the user's password at once, and then every
// rotation_period. static-creds/NAME gives the password of the moment and when it next changes;
// a write to rotate-role/NAME changes it now.

import { invalid, notFound } from '../../errors.js'
import type { EntryInfo } from '../backend.js'
import type { FieldData } from '../framework/fields.js'
import type { PathSpec } from '../framework/path-backend.js'
import { fieldsValue, fileInfo, GENERATED_SIZE } from '../framework/present.js'
import { allowsRole, readConfig } from './path-config.js'
import type { DatabaseState } from './state.js'
import { checkDbUsername, checkStatements } from './statements.js'
import {
  MIN_ROTATION_PERIOD,
  readStaticRole,
  secondsLeft,
  staticRoleNames,
  type StaticRole,
  type StaticRotations,
} from './static-roles.js'

function shown(role: StaticRole, lastError: string | undefined): Record<string, unknown> {
  return {
    db_name: role.db_name,
    username: role.username,
    rotation_period: role.rotation_period,
    rotation_statements: role.rotation_statements,
    last_vault_rotation: new Date(role.last_vault_rotation).toISOString(),
    ...(lastError !== undefined && { last_rotation_error: lastError }),
  }
}

function credentials(role: StaticRole): Record<string, unknown> {
  return {
    username: role.username,
    password: role.password,
    last_vault_rotation: new Date(role.last_vault_rotation).toISOString(),
    rotation_period: role.rotation_period,
    ttl: secondsLeft(role),
  }
}

/** The role a write makes of `old` (undefined: a new role) and the fields given. */
function updated(old: StaticRole | undefined, d: FieldData): StaticRole {
  const role: StaticRole = old
    ? { ...old }
    : { db_name: '', username: '', rotation_period: 0, rotation_statements: [], password: '', last_vault_rotation: 0 }
  const dbName = d.string('db_name')?.trim()
  const username = d.string('username')?.trim()
  if (old && dbName !== undefined && dbName !== old.db_name)
    throw invalid('the db_name of a static role cannot change: delete it and write it again')
  if (old && username !== undefined && username !== old.username)
    throw invalid('the username of a static role cannot change: delete it and write it again')
  if (dbName !== undefined) role.db_name = dbName
  if (username !== undefined) role.username = username
  if (d.has('rotation_period')) role.rotation_period = d.number('rotation_period')!
  if (d.has('rotation_statements')) role.rotation_statements = d.list('rotation_statements')!
  if (role.db_name === '') throw invalid("'db_name' is a required field: the NAME of a config/NAME")
  if (role.username === '') throw invalid("'username' is a required field: the database user whose password rotates")
  checkDbUsername('username', role.username)
  if (role.rotation_period < MIN_ROTATION_PERIOD)
    throw invalid(`'rotation_period' is a required field of at least ${MIN_ROTATION_PERIOD}s`)
  checkStatements('rotation_statements', role.rotation_statements)
  return role
}

export function staticPaths(state: DatabaseState, rotations: StaticRotations): PathSpec[] {
  const storage = state.storage
  const names = () => staticRoleNames(storage)
  const mustRead = async (name: string) => {
    const entry = await readStaticRole(storage, name)
    if (!entry) throw notFound('no such static role: write static-roles/NAME first')
    return entry
  }
  const staticRoles: PathSpec = {
    pattern: 'static-roles/:name',
    what: 'a static role (static-roles/NAME)',
    fields: { db_name: 'string', username: 'string', rotation_period: 'duration', rotation_statements: 'statements' },
    async stat({ name }) {
      const entry = await readStaticRole(storage, name!)
      return entry && fileInfo(entry, fieldsValue(shown(entry.data, rotations.lastError(name!))).length)
    },
    async read({ name }) {
      const entry = await mustRead(name!)
      const value = fieldsValue(shown(entry.data, rotations.lastError(name!)))
      return { value, created: entry.created, modified: entry.modified }
    },
    async write({ name }, d) {
      if (await readStaticRole(storage, name!)) return rotations.update(name!, (old) => updated(old, d))
      const role = updated(undefined, d)
      const config = await readConfig(storage, role.db_name)
      if (!config) throw notFound("the static role's db_name names no database configuration: write config/NAME first")
      if (!allowsRole(config.data, name!))
        throw invalid("the static role is not in its database configuration's allowed_roles: add it there")
      // A new static role takes the user's password over at once: only secretfs knows it from here.
      await rotations.rotate(name!, role)
    },
    delete: ({ name }) => rotations.remove(name!),
    names,
  }
  const staticCreds: PathSpec = {
    pattern: 'static-creds/:name',
    what: 'static-creds/NAME (the password of the moment)',
    async stat({ name }): Promise<EntryInfo | undefined> {
      const entry = await readStaticRole(storage, name!)
      if (!entry) return undefined
      // It changes at each rotation: read afresh at each open, never cached.
      return { ...fileInfo(entry, GENERATED_SIZE), generated: true, readOnly: true }
    },
    async read({ name }) {
      const entry = await mustRead(name!)
      return {
        value: fieldsValue(credentials(entry.data)),
        created: entry.created,
        modified: entry.modified,
        generated: true,
        readOnly: true,
        credential: 'postgresql',
      }
    },
    names,
  }
  const rotateRole: PathSpec = {
    pattern: 'rotate-role/:name',
    what: 'rotate-role/NAME (write to it to rotate the password now)',
    fields: {},
    async stat({ name }) {
      const entry = await readStaticRole(storage, name!)
      return entry && fileInfo(entry, rotationInfo(entry.data.last_vault_rotation).length)
    },
    async read({ name }) {
      const entry = await mustRead(name!)
      return { value: rotationInfo(entry.data.last_vault_rotation), created: entry.created, modified: entry.modified }
    },
    async write({ name }) {
      await mustRead(name!)
      await rotations.rotate(name!)
    },
    names,
  }
  return [staticRoles, staticCreds, rotateRole]
}

/** What a rotate-role/NAME or rotate-root/NAME file reads as: when it was last rotated. */
export function rotationInfo(last: number | null): Buffer {
  return fieldsValue({ last_rotation: last === null ? null : new Date(last).toISOString() })
}
