// creds/NAME: each read makes a new database user for the role NAME, with a fresh password and a
// lease, as Vault's database/creds/NAME. Stat and list never make any.

import { invalid, notFound } from '../../errors.js'
import type { EntryInfo, LeaseAccess } from '../backend.js'
import type { PathSpec } from '../framework/path-backend.js'
import { GENERATED_SIZE } from '../framework/present.js'
import { createUser } from './dynamic-user.js'
import { allowsRole, readConfig } from './path-config.js'
import { readRole, roleNames } from './path-roles.js'
import type { DatabaseState } from './state.js'

export function credsPath(state: DatabaseState, leases: LeaseAccess): PathSpec {
  return {
    pattern: 'creds/:name',
    what: 'creds/NAME (a database user, made afresh by each read)',
    async stat({ name }): Promise<EntryInfo | undefined> {
      const entry = await readRole(state.storage, name!)
      if (!entry) return undefined
      const { created, modified } = entry
      return { kind: 'file', size: GENERATED_SIZE, created, modified, generated: true, readOnly: true }
    },
    async read({ name }) {
      const entry = await readRole(state.storage, name!)
      if (!entry) throw notFound('no such role: write roles/NAME first')
      const role = entry.data
      const config = await readConfig(state.storage, role.db_name)
      if (!config) throw notFound("the role's db_name names no database configuration: write config/NAME first")
      if (!allowsRole(config.data, name!))
        throw invalid("the role is not in its database configuration's allowed_roles: add it there")
      // The user's VALID UNTIL is the lease's end, as the lease system will set it.
      const { ttl } = leases.ttls({ ttl: role.default_ttl, maxTtl: role.max_ttl })
      return createUser(
        await state.database(role.db_name, config),
        state.storage,
        name!,
        role,
        new Date(Date.now() + ttl * 1000),
      )
    },
    names: () => roleNames(state.storage),
  }
}
