// config/NAME: how to reach one PostgreSQL database, as Vault's database/config/NAME with the
// postgresql-database-plugin: a connection URL with {{username}} and {{password}} filled in from
// the fields of those names, which roles may use it, and how many connections to keep. A write
// updates the fields given and keeps the rest; it connects first (verify_connection) and fails
// with PostgreSQL's reason. A read never shows the password.

import { invalid, notFound } from '../../errors.js'
import type { LockHeld, StorageView } from '../../barrier/barrier.js'
import type { FieldData } from '../framework/fields.js'
import { getJson, putJson, type JsonEntry } from '../framework/json-entry.js'
import type { PathSpec } from '../framework/path-backend.js'
import { fieldsValue, fileInfo } from '../framework/present.js'
import { reason, verifyConnection, type ConnectionDetails } from './postgres.js'
import type { DatabaseState } from './state.js'
import { checkDbUsername, checkStatements } from './statements.js'

export const PLUGIN_NAME = 'postgresql-database-plugin'

export interface DbConfig extends ConnectionDetails {
  plugin_name: string
  /** Role names (or globs with *) that may use this database. Empty: none. */
  allowed_roles: string[]
  verify_connection: boolean
  /** Empty: the plugin's default (ALTER USER … WITH PASSWORD). */
  root_rotation_statements: string[]
  /** When rotate-root last set the password (ms since the epoch), or null. */
  root_rotated: number | null
}

const DEFAULTS: Omit<DbConfig, 'plugin_name' | 'connection_url'> = {
  username: '',
  password: '',
  allowed_roles: [],
  max_open_connections: 4,
  verify_connection: true,
  root_rotation_statements: [],
  root_rotated: null,
}

/** At most this many connections per configuration. */
const MAX_CONNECTIONS = 64

const storageKey = (name: string) => `config/${name}`

export async function readConfig(storage: StorageView, name: string): Promise<JsonEntry<DbConfig> | undefined> {
  const entry = await getJson<DbConfig>(storage, storageKey(name))
  return entry && { ...entry, data: { ...DEFAULTS, ...entry.data } }
}

export async function writeConfig(
  storage: StorageView,
  name: string,
  config: DbConfig,
  created?: Date,
  whileHeld?: LockHeld,
) {
  await putJson(storage, storageKey(name), config, created, whileHeld)
}

export async function configNames(storage: StorageView): Promise<string[]> {
  return (await storage.list('config/')).filter((n) => !n.endsWith('/'))
}

/** Whether `config` lets the role `role` use it: a name in allowed_roles, or a glob (*) matching it. */
export function allowsRole(config: DbConfig, role: string): boolean {
  return config.allowed_roles.some((pattern) => {
    const parts = pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    return new RegExp(`^${parts.join('.*')}$`).test(role)
  })
}

/** The configuration as Vault's read shows it: never the password. */
function shown(c: DbConfig): Record<string, unknown> {
  return {
    plugin_name: c.plugin_name,
    connection_details: {
      connection_url: c.connection_url,
      username: c.username,
      max_open_connections: c.max_open_connections,
    },
    allowed_roles: c.allowed_roles,
    root_credentials_rotate_statements: c.root_rotation_statements,
    verify_connection: c.verify_connection,
  }
}

/** Refuses a connection URL that is not a PostgreSQL URL, or that holds a password itself. */
export function checkConnectionUrl(url: string, c: Pick<DbConfig, 'username' | 'password'>): void {
  const usage = 'connection_url must be a URL such as postgresql://{{username}}:{{password}}@localhost:5432/postgres'
  for (const m of url.matchAll(/\{\{[^}]*\}\}/g))
    if (m[0] !== '{{username}}' && m[0] !== '{{password}}')
      throw invalid('connection_url may use {{username}} and {{password}}, and no other placeholder')
  let parsed: URL
  try {
    // A socket directory in ?host= leaves the host empty, which URL refuses after credentials.
    const probe = url.replaceAll('{{username}}', 'u').replaceAll('{{password}}', 'PASSWORD-PLACEHOLDER')
    parsed = new URL(probe.replace(/@\//, '@localhost/'))
  } catch {
    throw invalid(usage)
  }
  if (parsed.protocol !== 'postgresql:' && parsed.protocol !== 'postgres:') throw invalid(usage)
  const literal =
    (parsed.password !== '' && parsed.password !== 'PASSWORD-PLACEHOLDER') ||
    [...parsed.searchParams.keys()].some((k) => k.toLowerCase() === 'password')
  if (literal)
    throw invalid(
      'connection_url holds a password, which a read of the configuration would show: give it in the password field, and write {{password}} in the URL',
    )
  if (url.includes('{{password}}') && c.password === '')
    throw invalid('connection_url uses {{password}}: give the password field too')
  if (url.includes('{{username}}') && c.username === '')
    throw invalid('connection_url uses {{username}}: give the username field too')
}

function updated(old: DbConfig | undefined, d: FieldData): DbConfig {
  const plugin = d.string('plugin_name')?.trim() ?? old?.plugin_name
  if (plugin === undefined || plugin === '')
    throw invalid(`'plugin_name' is a required field: ${PLUGIN_NAME} (the one plugin secretfs has)`)
  if (plugin !== PLUGIN_NAME) throw invalid(`plugin_name must be ${PLUGIN_NAME}, the one plugin secretfs has`)
  const url = d.string('connection_url')?.trim() ?? old?.connection_url
  if (url === undefined || url === '') throw invalid("'connection_url' is a required field")
  const config: DbConfig = {
    ...DEFAULTS,
    ...old,
    plugin_name: plugin,
    connection_url: url,
  }
  if (d.has('username')) config.username = d.string('username')!.trim()
  // One line ending is what `echo` or a terminal adds to a password piped in (password=-), never
  // part of it.
  if (d.has('password')) config.password = d.string('password')!.replace(/\r?\n$/, '')
  if (d.has('allowed_roles')) config.allowed_roles = d.list('allowed_roles')!.filter((r) => r !== '')
  if (d.has('max_open_connections')) config.max_open_connections = d.number('max_open_connections')!
  if (d.has('verify_connection')) config.verify_connection = d.bool('verify_connection')!
  if (d.has('root_rotation_statements')) config.root_rotation_statements = d.list('root_rotation_statements')!
  if (config.username !== '') checkDbUsername('username', config.username)
  if (config.max_open_connections < 1 || config.max_open_connections > MAX_CONNECTIONS)
    throw invalid(`max_open_connections must be from 1 to ${MAX_CONNECTIONS}`)
  checkStatements('root_rotation_statements', config.root_rotation_statements)
  checkConnectionUrl(config.connection_url, config)
  return config
}

export function configPath(state: DatabaseState): PathSpec {
  return {
    pattern: 'config/:name',
    what: 'a database configuration (config/NAME)',
    fields: {
      plugin_name: 'string',
      connection_url: 'string',
      username: 'string',
      password: 'string',
      allowed_roles: 'string-list',
      max_open_connections: 'int',
      verify_connection: 'bool',
      root_rotation_statements: 'statements',
    },
    async stat({ name }) {
      const entry = await readConfig(state.storage, name!)
      return entry && fileInfo(entry, fieldsValue(shown(entry.data)).length)
    },
    async read({ name }) {
      const entry = await readConfig(state.storage, name!)
      if (!entry) throw notFound('no such database configuration: write plugin_name=… connection_url=… to it')
      return { value: fieldsValue(shown(entry.data)), created: entry.created, modified: entry.modified }
    },
    async write({ name }, d) {
      await state.serialize(`config/${name}`, async () => {
        const old = await readConfig(state.storage, name!)
        const config = updated(old?.data, d)
        if (config.verify_connection)
          await verifyConnection(config, state.timeouts).catch((e: unknown) => {
            throw invalid(`cannot connect with this configuration (verify_connection): ${reason(e, [config.password])}`)
          })
        await writeConfig(state.storage, name!, config, old?.created)
        state.configChanged(name!)
      })
    },
    async delete({ name }) {
      if (!(await readConfig(state.storage, name!))) throw notFound()
      await state.storage.delete(storageKey(name!))
      state.configChanged(name!)
    },
    names: () => configNames(state.storage),
  }
}
