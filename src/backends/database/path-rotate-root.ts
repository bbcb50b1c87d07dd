// rotate-root/NAME: a write sets a new password for config/NAME's own user, as Vault's
// database/rotate-root/NAME: from then on only secretfs knows it. A write-ahead record holds the
// new password while it is being set, so that a daemon that dies between setting it and storing
// it can still find out, at the next unseal, which password works.

import { invalid, notFound } from '../../errors.js'
import type { PathSpec } from '../framework/path-backend.js'
import { fileInfo } from '../framework/present.js'
import { deleteWal, putWal } from '../framework/wal.js'
import { newPassword } from './dynamic-user.js'
import { configNames, readConfig, writeConfig } from './path-config.js'
import { rotationInfo } from './path-static-roles.js'
import { verifyConnection } from './postgres.js'
import { DatabaseState } from './state.js'
import { DEFAULT_ROOT_ROTATION, render } from './statements.js'

export type RootRotationWal = { kind: 'root'; db_name: string; password: string }

/**
 * Sets a new password for config/NAME's own user and stores it. Should this daemon's lock on the
 * configuration be lost after the database is given the password, and before it is stored
 * (checked with the store write), another daemon may have given it one after: the configuration is
 * then given this one only if it works, under a new lock.
 */
export async function rotateRoot(state: DatabaseState, name: string): Promise<void> {
  const lost = await state.serialize(`config/${name}`, async (held) => {
    const entry = await readConfig(state.storage, name)
    if (!entry) throw notFound('no such database configuration: write config/NAME first')
    const config = entry.data
    if (config.username === '' || config.password === '' || !config.connection_url.includes('{{password}}'))
      throw invalid(
        'rotate-root needs the username and password fields of the configuration, and {{password}} in its connection_url',
      )
    const db = await state.database(name, entry)
    const wal: RootRotationWal = { kind: 'root', db_name: name, password: newPassword() }
    const walId = await putWal(state.storage, wal)
    const statements =
      config.root_rotation_statements.length > 0 ? config.root_rotation_statements : DEFAULT_ROOT_ROTATION
    try {
      // Another daemon may rotate it once this one's lock is gone: the database is not touched then.
      await held()
      await db.transaction(
        'running root_rotation_statements',
        render(statements, { username: config.username, password: wal.password }),
        [wal.password, config.password],
      )
    } catch (e) {
      await deleteWal(state.storage, walId).catch(() => {})
      throw e
    }
    const rotated = { ...config, password: wal.password, root_rotated: Date.now() }
    if (!(await DatabaseState.stored(writeConfig(state.storage, name, rotated, entry.created, held))))
      return { wal, walId }
    state.configChanged(name)
    await deleteWal(state.storage, walId)
    return undefined
  })
  if (!lost) return
  await recoverRootRotation(state, lost.wal)
  await deleteWal(state.storage, lost.walId)
}

/**
 * Finishes a root rotation the daemon died in: if the record's password works, the database has
 * it, and the configuration is given it; otherwise the old one stays.
 */
export async function recoverRootRotation(state: DatabaseState, wal: RootRotationWal): Promise<void> {
  await state.serialize(`config/${wal.db_name}`, async () => {
    const entry = await readConfig(state.storage, wal.db_name)
    if (!entry || entry.data.password === wal.password) return
    const works = await verifyConnection({ ...entry.data, password: wal.password }, state.timeouts).then(
      () => true,
      () => false,
    )
    if (!works) return
    await writeConfig(
      state.storage,
      wal.db_name,
      { ...entry.data, password: wal.password, root_rotated: Date.now() },
      entry.created,
    )
    state.configChanged(wal.db_name)
  })
}

export function rotateRootPath(state: DatabaseState): PathSpec {
  return {
    pattern: 'rotate-root/:name',
    what: 'rotate-root/NAME (write to it to rotate the root password now)',
    fields: {},
    async stat({ name }) {
      const entry = await readConfig(state.storage, name!)
      return entry && fileInfo(entry, rotationInfo(entry.data.root_rotated).length)
    },
    async read({ name }) {
      const entry = await readConfig(state.storage, name!)
      if (!entry) throw notFound('no such database configuration: write config/NAME first')
      return { value: rotationInfo(entry.data.root_rotated), created: entry.created, modified: entry.modified }
    },
    write: ({ name }) => rotateRoot(state, name!),
    names: () => configNames(state.storage),
  }
}
