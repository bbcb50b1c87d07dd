// creds/NAME and sts/NAME: reading one makes new credentials for the role NAME, as Vault's
// path_user.go: creds/ gives a role's credentials of any type, sts/ only STS credentials. Stat and
// list never make any.

import { invalid, notFound } from '../../errors.js'
import type { EntryInfo, ReadResult } from '../backend.js'
import type { PathSpec } from '../framework/path-backend.js'
import { createIamUser } from './iam-user.js'
import { readLeaseConfig } from './path-config-lease.js'
import { isSts, readRole, roleNames, type CredentialType, type Role } from './path-roles.js'
import { GENERATED_SIZE } from '../framework/present.js'
import type { AwsState } from './state.js'
import { assumeRole, federationToken, sessionToken } from './sts.js'

type Via = 'creds' | 'sts'

/** Which credentials a read of `via`/NAME makes for `role`, or why it makes none. */
function credentialType(role: Role, via: Via): CredentialType {
  // Two types only for Vault's legacy policy roles: an IAM user from creds/, a federation token from sts/.
  const type =
    role.credential_types.length === 1 ? role.credential_types[0]! : via === 'creds' ? 'iam_user' : 'federation_token'
  if (via === 'sts' && type === 'iam_user')
    throw invalid('attempted to retrieve iam_user credentials through the sts path; read creds/NAME for them')
  if (via === 'creds' && type !== 'iam_user' && role.prohibit_flexible_cred_path)
    throw invalid(
      `attempted to retrieve ${type} credentials through the creds path; this is not allowed for legacy roles: read sts/NAME`,
    )
  return type
}

const serves = (role: Role, via: Via) => via === 'creds' || isSts(role)

/** New credentials for the role `name`, as a read of `via`/NAME makes them, with their lease request. */
export async function mintCredentials(state: AwsState, name: string, via: Via): Promise<ReadResult> {
  const entry = await readRole(state.storage, name)
  if (!entry) throw notFound('no such role: write roles/NAME first')
  const role = entry.data
  const type = credentialType(role, via)
  const aws = await state.clients()
  switch (type) {
    case 'iam_user':
      return createIamUser(aws, state.storage, name, role, (await readLeaseConfig(state.storage))?.data)
    case 'assumed_role':
      return assumeRole(aws, name, role)
    case 'federation_token':
      return federationToken(aws, role)
    case 'session_token':
      return sessionToken(aws, role)
  }
}

export function credsPath(state: AwsState, via: Via): PathSpec {
  return {
    pattern: `${via}/:name`,
    what: `${via}/NAME (credentials, made afresh by each read)`,
    async stat({ name }): Promise<EntryInfo | undefined> {
      const entry = await readRole(state.storage, name!)
      if (!entry || !serves(entry.data, via)) return undefined
      const { created, modified } = entry
      return { kind: 'file', size: GENERATED_SIZE, created, modified, generated: true, readOnly: true }
    },
    read: ({ name }) => mintCredentials(state, name!, via),
    async names() {
      const out: string[] = []
      for (const name of await roleNames(state.storage)) {
        const entry = await readRole(state.storage, name)
        if (entry && serves(entry.data, via)) out.push(name)
      }
      return out
    },
  }
}
