// roles/NAME: what credentials a role makes (an IAM user, or STS credentials) and with which
// policies, with Vault's fields and rules. A write updates the role's fields as Vault does; the
// legacy `policy` and `arn` fields, and a bare IAM policy document written to the file, replace it.

import { invalid, notFound } from '../../errors.js'
import type { StorageView } from '../../barrier/barrier.js'
import type { Fields } from '../../core/secret-data.js'
import { quoteName, type FieldData, type FieldSchemas } from '../framework/fields.js'
import { getJson, putJson, type JsonEntry } from '../framework/json-entry.js'
import type { PathSpec } from '../framework/path-backend.js'
import { fieldsValue, fileInfo } from '../framework/present.js'
import type { AwsState } from './state.js'

export const CREDENTIAL_TYPES = ['iam_user', 'assumed_role', 'federation_token', 'session_token'] as const
export type CredentialType = (typeof CREDENTIAL_TYPES)[number]
export const STS_TYPES: readonly CredentialType[] = ['assumed_role', 'federation_token', 'session_token']

/** A role as stored (Vault's awsRoleEntry; TTLs in seconds). */
export interface Role {
  credential_types: CredentialType[]
  policy_arns: string[]
  role_arns: string[]
  policy_document: string
  iam_groups: string[]
  iam_tags: Record<string, string>
  session_tags: Record<string, string>
  external_id: string
  default_sts_ttl: number
  max_sts_ttl: number
  user_path: string
  permissions_boundary_arn: string
  /** Seconds an iam_user read waits for AWS to accept the new key (0: not at all); null: the default. */
  key_ready_timeout: number | null
  /** A role made from the legacy fields: its credentials come from creds/ or sts/ only as Vault allows. */
  prohibit_flexible_cred_path: boolean
}

const EMPTY: Role = {
  credential_types: [],
  policy_arns: [],
  role_arns: [],
  policy_document: '',
  iam_groups: [],
  iam_tags: {},
  session_tags: {},
  external_id: '',
  default_sts_ttl: 0,
  max_sts_ttl: 0,
  user_path: '',
  permissions_boundary_arn: '',
  key_ready_timeout: null,
  prohibit_flexible_cred_path: false,
}

/** How long an iam_user read waits for its new key by default, in seconds: AWS's delay is usually a few. */
export const DEFAULT_KEY_READY_TIMEOUT = 30
const MAX_KEY_READY_TIMEOUT = 300

/** Seconds a read of `role` waits for AWS to accept a new access key: 0 for roles that make none. */
export const keyReadyTimeout = (role: Role): number =>
  role.credential_types.includes('iam_user') ? (role.key_ready_timeout ?? DEFAULT_KEY_READY_TIMEOUT) : 0

const FIELDS: FieldSchemas = {
  credential_type: 'string',
  policy_document: 'string',
  policy_arns: 'string-list',
  role_arns: 'string-list',
  iam_groups: 'string-list',
  iam_tags: 'kv-pairs',
  session_tags: 'kv-pairs',
  external_id: 'string',
  default_sts_ttl: 'duration',
  max_sts_ttl: 'duration',
  user_path: 'string',
  permissions_boundary_arn: 'string',
  key_ready_timeout: 'duration',
  policy: 'string',
  arn: 'string',
}

const LEGACY = ['policy', 'arn']

/** Vault's rule for an IAM user path. */
const USER_PATH = /^\/([\x21-\x7F]{0,510}\/)?$/

const storageKey = (name: string) => `role/${name}`

export async function readRole(storage: StorageView, name: string): Promise<JsonEntry<Role> | undefined> {
  const entry = await getJson<Role>(storage, storageKey(name))
  return entry && { ...entry, data: { ...EMPTY, ...entry.data } }
}

export async function roleNames(storage: StorageView): Promise<string[]> {
  return (await storage.list('role/')).filter((n) => !n.endsWith('/'))
}

export const isSts = (role: Role) => role.credential_types.some((t) => STS_TYPES.includes(t))

/** The role as Vault's read shows it; written back, it changes nothing. */
export function roleFields(role: Role): Record<string, unknown> {
  return {
    credential_type: role.credential_types.join(','),
    policy_arns: role.policy_arns,
    role_arns: role.role_arns,
    policy_document: role.policy_document,
    iam_groups: role.iam_groups,
    iam_tags: role.iam_tags,
    session_tags: role.session_tags,
    external_id: role.external_id,
    default_sts_ttl: role.default_sts_ttl,
    max_sts_ttl: role.max_sts_ttl,
    user_path: role.user_path,
    permissions_boundary_arn: role.permissions_boundary_arn,
    key_ready_timeout: keyReadyTimeout(role),
  }
}

/** A bare IAM policy document written to roles/NAME (`cp policy.json roles/deploy`) is the legacy `policy`. */
function preprocess(raw: Fields): Fields {
  const keys = Object.keys(raw)
  if (Object.hasOwn(raw, 'Statement') && keys.every((k) => !Object.hasOwn(FIELDS, k)))
    return { policy: JSON.stringify(raw) }
  return raw
}

/** The role a write makes of `old` (undefined for a new role) and the fields given. */
export function roleFromWrite(old: Role | undefined, d: FieldData): Role {
  const legacy = LEGACY.filter((f) => d.has(f))
  if (legacy.length > 0) {
    if (legacy.length > 1) throw invalid('only one of policy or arn should be provided')
    const other = d.names().find((n) => !LEGACY.includes(n))
    if (other !== undefined) throw invalid(`cannot supply deprecated role or policy parameters with ${other}`)
    const role = d.has('policy') ? legacyPolicy(d.string('policy')!) : legacyArn(d.string('arn')!)
    validate(role)
    return role
  }
  const role: Role = structuredClone(old ?? EMPTY)
  role.prohibit_flexible_cred_path = false
  if (d.has('credential_type')) role.credential_types = credentialTypes(d.string('credential_type')!)
  if (d.has('policy_document')) role.policy_document = compactPolicy(d.string('policy_document')!, 'policy_document')
  for (const f of ['policy_arns', 'role_arns', 'iam_groups'] as const) {
    const list = d.list(f)
    if (list) role[f] = list.filter((s) => s !== '')
  }
  for (const f of ['iam_tags', 'session_tags'] as const) {
    const pairs = d.pairs(f)
    if (pairs) role[f] = Object.fromEntries(pairs)
  }
  for (const f of ['external_id', 'user_path', 'permissions_boundary_arn'] as const) {
    const v = d.string(f)
    if (v !== undefined) role[f] = v.trim()
  }
  for (const f of ['default_sts_ttl', 'max_sts_ttl'] as const) {
    const v = d.number(f)
    if (v !== undefined) role[f] = v
  }
  const ready = d.number('key_ready_timeout')
  if (ready !== undefined) role.key_ready_timeout = ready
  // An STS role reads as 0 (it waits for nothing); written back, that must not turn the wait off
  // for good should the role later become iam_user.
  if (!role.credential_types.includes('iam_user') && role.key_ready_timeout === 0) role.key_ready_timeout = null
  validate(role)
  return role
}

function credentialTypes(text: string): CredentialType[] {
  const given = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  const out: CredentialType[] = []
  for (const t of given) {
    const known = CREDENTIAL_TYPES.find((c) => c === t)
    if (!known) throw invalid(`unknown credential_type ${quoteName(t)}; it is one of ${CREDENTIAL_TYPES.join(', ')}`)
    if (!out.includes(known)) out.push(known)
  }
  if (out.length === 0) throw invalid(`credential_type is empty; it is one of ${CREDENTIAL_TYPES.join(', ')}`)
  // Vault's legacy roles are the one case of two types (the read shows them joined).
  if (out.length > 1 && !(out.length === 2 && out.includes('iam_user') && out.includes('federation_token')))
    throw invalid(`credential_type is one of ${CREDENTIAL_TYPES.join(', ')}`)
  return out
}

function compactPolicy(text: string, field: string): string {
  if (text.trim() === '') return ''
  try {
    return JSON.stringify(JSON.parse(text))
  } catch {
    throw invalid(`${field} is not valid JSON: it must be an IAM policy document`)
  }
}

function legacyPolicy(text: string): Role {
  return {
    ...structuredClone(EMPTY),
    // The legacy policy served both IAM users and federation tokens: creds/ makes the one, sts/ the other.
    credential_types: ['iam_user', 'federation_token'],
    policy_document: compactPolicy(text, 'policy'),
    prohibit_flexible_cred_path: true,
  }
}

function legacyArn(text: string): Role {
  const resource = parseArn(text)?.resource ?? ''
  const base = { ...structuredClone(EMPTY), prohibit_flexible_cred_path: true }
  if (resource.startsWith('role/')) return { ...base, credential_types: ['assumed_role'], role_arns: [text.trim()] }
  if (resource.startsWith('policy/')) return { ...base, credential_types: ['iam_user'], policy_arns: [text.trim()] }
  throw invalid('arn must be the ARN of an IAM policy (arn:aws:iam::ACCOUNT:policy/NAME) or of a role to assume')
}

function parseArn(text: string): { service: string; resource: string } | undefined {
  const parts = text.trim().split(':')
  if (parts.length < 6 || parts[0] !== 'arn' || !parts[1] || !parts[2]) return undefined
  return { service: parts[2], resource: parts.slice(5).join(':') }
}

/** Vault's checks of a role, all of them: the message lists every problem. */
function validate(r: Role): void {
  const errors: string[] = []
  const has = (t: CredentialType) => r.credential_types.includes(t)
  const types = CREDENTIAL_TYPES.join(', ')
  if (r.credential_types.length === 0) errors.push(`credential_type is required: one of ${types}`)
  const sts = isSts(r)
  if (r.default_sts_ttl !== 0 && !sts)
    errors.push('default_sts_ttl is only valid for assumed_role, federation_token and session_token roles')
  if (r.max_sts_ttl !== 0 && !sts)
    errors.push('max_sts_ttl is only valid for assumed_role, federation_token and session_token roles')
  if (r.max_sts_ttl > 0 && r.default_sts_ttl > r.max_sts_ttl)
    errors.push('default_sts_ttl must be less than or equal to max_sts_ttl')
  if (r.user_path !== '') {
    if (!has('iam_user')) errors.push('user_path is only valid for iam_user roles')
    if (!USER_PATH.test(r.user_path))
      errors.push('user_path must start and end with / and hold only printable ASCII, at most 512 characters')
  }
  if (r.permissions_boundary_arn !== '') {
    if (!has('iam_user')) errors.push('permissions_boundary_arn is only valid for iam_user roles')
    const arn = parseArn(r.permissions_boundary_arn)
    if (!arn || arn.service !== 'iam' || !arn.resource.startsWith('policy/'))
      errors.push('permissions_boundary_arn must be the ARN of an IAM policy (arn:aws:iam::ACCOUNT:policy/NAME)')
  }
  if (r.key_ready_timeout !== null) {
    if (!has('iam_user'))
      errors.push("key_ready_timeout is only valid for iam_user roles: it waits for a new IAM user's access key")
    if (r.key_ready_timeout > MAX_KEY_READY_TIMEOUT)
      errors.push(`key_ready_timeout must be at most ${MAX_KEY_READY_TIMEOUT / 60}m (0 turns the wait off)`)
  }
  if (Object.keys(r.iam_tags).length > 0 && !has('iam_user')) errors.push('iam_tags is only valid for iam_user roles')
  if (r.iam_groups.length > 0 && !has('iam_user')) errors.push('iam_groups is only supported for iam_user roles')
  if (has('iam_user') && r.policy_document === '' && r.policy_arns.length === 0 && r.iam_groups.length === 0)
    errors.push('an iam_user role needs at least one of policy_document, policy_arns or iam_groups')
  if (has('session_token') && (r.policy_document !== '' || r.policy_arns.length > 0))
    errors.push('cannot supply a policy (policy_document or policy_arns) when using credential_type session_token')
  if (r.role_arns.length > 0 && !has('assumed_role'))
    errors.push("cannot supply role_arns when credential_type isn't assumed_role")
  if (has('assumed_role') && r.role_arns.length === 0)
    errors.push('an assumed_role role needs role_arns: the ARNs of the AWS roles to assume')
  if (Object.keys(r.session_tags).length > 0 && !has('assumed_role'))
    errors.push("cannot supply session_tags when credential_type isn't assumed_role")
  if (r.external_id !== '' && !has('assumed_role'))
    errors.push("cannot supply external_id when credential_type isn't assumed_role")
  if (has('federation_token') && r.policy_document === '' && r.policy_arns.length === 0)
    errors.push(
      'a federation_token role needs policy_document or policy_arns: without them the token would carry every permission of config/root',
    )
  if (errors.length > 0) throw invalid(`the role is not valid: ${errors.join('; ')}`)
}

export function rolesPath(state: AwsState): PathSpec {
  return {
    pattern: 'roles/:name',
    what: 'a role (roles/NAME)',
    fields: FIELDS,
    preprocess,
    async stat({ name }) {
      const entry = await readRole(state.storage, name!)
      return entry && fileInfo(entry, fieldsValue(roleFields(entry.data)).length)
    },
    async read({ name }) {
      const entry = await readRole(state.storage, name!)
      if (!entry) throw notFound('no such role')
      return { value: fieldsValue(roleFields(entry.data)), created: entry.created, modified: entry.modified }
    },
    async write({ name }, d) {
      const old = await readRole(state.storage, name!)
      await putJson(state.storage, storageKey(name!), roleFromWrite(old?.data, d), old?.created)
    },
    async delete({ name }) {
      if (!(await readRole(state.storage, name!))) throw notFound('no such role')
      await state.storage.delete(storageKey(name!))
    },
    names: () => roleNames(state.storage),
  }
}
