// STS credentials: assumed_role (AssumeRole), federation_token (GetFederationToken) and
// session_token (GetSessionToken). They expire by themselves and cannot be revoked or renewed,
// so their lease only ends.

import {
  AssumeRoleCommand,
  GetFederationTokenCommand,
  GetSessionTokenCommand,
  type Credentials,
} from '@aws-sdk/client-sts'
import { invalid } from '../../errors.js'
import type { ReadResult } from '../backend.js'
import { AwsError, type AwsClients } from './client.js'
import { randomAlnum } from '../../crypto/random-text.js'
import { iamUserName } from './iam-user.js'
import type { Role } from './path-roles.js'
import { fieldsValue } from '../framework/present.js'

/** Vault's default lifetime of STS credentials, in seconds. */
export const DEFAULT_STS_TTL = 3600

/** The lifetime of credentials for `role`: its default_sts_ttl (else an hour), at most its max_sts_ttl. */
export function stsTtl(role: Role): number {
  const ttl = role.default_sts_ttl > 0 ? role.default_sts_ttl : DEFAULT_STS_TTL
  return role.max_sts_ttl > 0 ? Math.min(ttl, role.max_sts_ttl) : ttl
}

export async function assumeRole(aws: AwsClients, roleName: string, role: Role): Promise<ReadResult> {
  // A read carries no parameters, so the role to assume must be the only one (Vault asks for role_arn).
  if (role.role_arns.length !== 1)
    throw invalid('this role lists several role_arns and a read cannot say which to assume; make a role for each ARN')
  const ttl = stsTtl(role)
  const sessionName = iamUserName(roleName)
  const tags = Object.entries(role.session_tags).map(([Key, Value]) => ({ Key, Value }))
  const out = await aws.call(
    'AssumeRole',
    (o) =>
      aws.sts.send(
        new AssumeRoleCommand({
          RoleArn: role.role_arns[0],
          RoleSessionName: sessionName,
          DurationSeconds: ttl,
          Policy: role.policy_document || undefined,
          PolicyArns: role.policy_arns.length > 0 ? role.policy_arns.map((arn) => ({ arn })) : undefined,
          Tags: tags.length > 0 ? tags : undefined,
          ExternalId: role.external_id || undefined,
        }),
        o,
      ),
    [sessionName, roleName],
  )
  return stsResult('AssumeRole', out.Credentials, ttl, { arn: out.AssumedRoleUser?.Arn ?? null })
}

export async function federationToken(aws: AwsClients, role: Role): Promise<ReadResult> {
  const ttl = stsTtl(role)
  // GetFederationToken's Name is at most 32 characters.
  const name = `secretfs-${Math.floor(Date.now() / 1000)}-${randomAlnum(12)}`
  const out = await aws.call(
    'GetFederationToken',
    (o) =>
      aws.sts.send(
        new GetFederationTokenCommand({
          Name: name,
          DurationSeconds: ttl,
          Policy: role.policy_document || undefined,
          PolicyArns: role.policy_arns.length > 0 ? role.policy_arns.map((arn) => ({ arn })) : undefined,
        }),
        o,
      ),
    [name],
  )
  return stsResult('GetFederationToken', out.Credentials, ttl)
}

export async function sessionToken(aws: AwsClients, role: Role): Promise<ReadResult> {
  const ttl = stsTtl(role)
  const out = await aws.call('GetSessionToken', (o) =>
    aws.sts.send(new GetSessionTokenCommand({ DurationSeconds: ttl }), o),
  )
  return stsResult('GetSessionToken', out.Credentials, ttl)
}

function stsResult(
  op: string,
  c: Credentials | undefined,
  ttl: number,
  extra: Record<string, unknown> = {},
): ReadResult {
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken)
    throw new AwsError('NoCredentials', `AWS answered ${op} without credentials`)
  const now = new Date()
  return {
    value: fieldsValue({
      access_key: c.AccessKeyId,
      secret_key: c.SecretAccessKey,
      security_token: c.SessionToken,
      ...extra,
    }),
    created: now,
    modified: now,
    generated: true,
    readOnly: true,
    lease: { ttl, maxTtl: ttl, renewable: false, data: { kind: 'sts' } },
  }
}
