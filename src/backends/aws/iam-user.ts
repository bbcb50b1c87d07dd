// iam_user credentials: an IAM user made for one read, with the role's policies, groups and tags,
// and an access key, handed out once AWS accepts it; revoked by deleting all of it. A write-ahead
// record names the user before it exists, so that a daemon that dies half-way leaves nothing that
// recover() cannot find.

import {
  AddUserToGroupCommand,
  AttachUserPolicyCommand,
  CreateAccessKeyCommand,
  CreateUserCommand,
  DeleteAccessKeyCommand,
  DeleteUserCommand,
  DeleteUserPolicyCommand,
  DetachUserPolicyCommand,
  ListAccessKeysCommand,
  ListAttachedUserPoliciesCommand,
  ListGroupsForUserCommand,
  ListUserPoliciesCommand,
  PutUserPolicyCommand,
  RemoveUserFromGroupCommand,
  TagUserCommand,
} from '@aws-sdk/client-iam'
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts'
import type { StorageView } from '../../barrier/barrier.js'
import { randomAlnum } from '../../crypto/random-text.js'
import type { ReadResult } from '../backend.js'
import { AwsError, isNoSuchEntity, type AwsClients } from './client.js'
import type { LeaseConfig } from './path-config-lease.js'
import { keyReadyTimeout, type Role } from './path-roles.js'
import { fieldsValue } from '../framework/present.js'
import { deleteWal, putWal } from '../framework/wal.js'

/** What revoking an IAM user's lease needs (never its secret key). */
// A type, not an interface: it must fit LeaseData's index signature.
export type IamUserLeaseData = {
  kind: 'iam_user'
  username: string
  access_key_id: string
  policy_name: string | null
  policy_arns: string[]
  groups: string[]
}

/** Vault's user name, with our prefix: `secretfs-<role>-<unix time>-<random>`, in IAM's 64 characters. */
export function iamUserName(roleName: string, now = Date.now()): string {
  const role = roleName.replace(/[^a-zA-Z0-9+=,.@_-]/g, '_').slice(0, 23)
  return `secretfs-${role}-${Math.floor(now / 1000)}-${randomAlnum(20)}`.slice(0, 64)
}

/** Makes an IAM user for `role` and an access key for it; undoes all of it if any step fails. */
export async function createIamUser(
  aws: AwsClients,
  storage: StorageView,
  roleName: string,
  role: Role,
  lease: LeaseConfig | undefined,
): Promise<ReadResult> {
  const username = iamUserName(roleName)
  const hide = [username, roleName]
  const walId = await putWal(storage, { kind: 'iam_user', username })
  // A CreateUser that AWS refused made nothing; after any other failure, the user may exist.
  let made = true
  try {
    await aws
      .call(
        'CreateUser',
        (o) =>
          aws.iam.send(
            new CreateUserCommand({
              UserName: username,
              Path: role.user_path || '/',
              PermissionsBoundary: role.permissions_boundary_arn || undefined,
            }),
            o,
          ),
        hide,
      )
      .catch((e: unknown) => {
        made = !(e instanceof AwsError && e.refused)
        throw e
      })
    for (const arn of role.policy_arns)
      await aws.call(
        'AttachUserPolicy',
        (o) => aws.iam.send(new AttachUserPolicyCommand({ UserName: username, PolicyArn: arn }), o),
        hide,
      )
    if (role.policy_document !== '')
      await aws.call(
        'PutUserPolicy',
        (o) =>
          aws.iam.send(
            new PutUserPolicyCommand({
              UserName: username,
              PolicyName: roleName,
              PolicyDocument: role.policy_document,
            }),
            o,
          ),
        hide,
      )
    for (const group of role.iam_groups)
      await aws.call(
        'AddUserToGroup',
        (o) => aws.iam.send(new AddUserToGroupCommand({ UserName: username, GroupName: group }), o),
        hide,
      )
    const tags = Object.entries(role.iam_tags).map(([Key, Value]) => ({ Key, Value }))
    if (tags.length > 0)
      await aws.call('TagUser', (o) => aws.iam.send(new TagUserCommand({ UserName: username, Tags: tags }), o), hide)
    const created = await aws.call(
      'CreateAccessKey',
      (o) => aws.iam.send(new CreateAccessKeyCommand({ UserName: username }), o),
      hide,
    )
    const key = created.AccessKey
    if (!key?.AccessKeyId || !key.SecretAccessKey)
      throw new AwsError('NoKey', 'AWS answered CreateAccessKey without a key')
    await untilAccepted(aws, { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey }, role, hide)
    const data: IamUserLeaseData = {
      kind: 'iam_user',
      username,
      access_key_id: key.AccessKeyId,
      policy_name: role.policy_document !== '' ? roleName : null,
      policy_arns: role.policy_arns,
      groups: role.iam_groups,
    }
    const now = new Date()
    return {
      value: fieldsValue({ access_key: key.AccessKeyId, secret_key: key.SecretAccessKey, security_token: null }),
      created: now,
      modified: now,
      generated: true,
      readOnly: true,
      lease: { ttl: lease?.lease ?? 0, maxTtl: lease?.lease_max ?? 0, renewable: true, data },
      leased: () => deleteWal(storage, walId),
    }
  } catch (e) {
    try {
      if (made) await deleteIamUser(aws, username)
      await deleteWal(storage, walId)
    } catch {
      // The record stays, and recover() deletes the user at the next unseal.
    }
    throw e
  }
}

/** AWS's codes for a key it does not know yet: the only refusals a new key is retried after. */
const NOT_YET = ['InvalidClientTokenId', 'SignatureDoesNotMatch']

/**
 * Waits until STS GetCallerIdentity, signed with the new key, succeeds: AWS refuses a new access
 * key for some seconds after making it, and a key handed out then fails its first use. Gives up
 * after the role's key_ready_timeout, a call refused otherwise failing at once.
 */
async function untilAccepted(
  aws: AwsClients,
  keys: { accessKeyId: string; secretAccessKey: string },
  role: Role,
  hide: string[],
): Promise<void> {
  const seconds = keyReadyTimeout(role)
  if (seconds === 0) return
  const deadline = Date.now() + seconds * 1000
  const asKey = aws.signingWith(keys)
  let pause = 250
  /** AWS's last refusal of the key. */
  let refusal = ''
  try {
    for (;;) {
      // The wait bounds each call too: a call AWS leaves unanswered ends with it, not 60 s later.
      const expired = AbortSignal.timeout(Math.max(0, deadline - Date.now()))
      try {
        await asKey.call(
          'GetCallerIdentity',
          (o) =>
            asKey.sts.send(new GetCallerIdentityCommand({}), {
              abortSignal: AbortSignal.any([o.abortSignal, expired]),
            }),
          hide,
        )
        return
      } catch (e) {
        if (!(e instanceof AwsError)) throw e
        if (NOT_YET.includes(e.code)) refusal = e.code
        else if (!expired.aborted) throw e
      }
      const left = deadline - Date.now()
      if (left > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)))
      pause = Math.min(pause * 2, 2000)
      if (Date.now() >= deadline)
        throw new AwsError(
          'KeyNotReady',
          `AWS did not accept the new access key within ${seconds} s (GetCallerIdentity signed with it: ${
            refusal || 'no answer in time'
          }); set the role's key_ready_timeout to wait longer (such as key_ready_timeout=1m), or to 0 to hand keys out without waiting`,
        )
    }
  } finally {
    asKey.destroy()
  }
}

/** Deletes the IAM user `username` and everything that keeps it from being deleted; a user already gone is success. */
export async function deleteIamUser(aws: AwsClients, username: string): Promise<void> {
  const hide = [username]
  const UserName = username
  let keys: string[]
  try {
    keys = await pages((Marker) =>
      aws
        .call('ListAccessKeys', (o) => aws.iam.send(new ListAccessKeysCommand({ UserName, Marker }), o), hide)
        .then((r) => ({ items: (r.AccessKeyMetadata ?? []).map((k) => k.AccessKeyId ?? ''), ...r })),
    )
  } catch (e) {
    if (isNoSuchEntity(e)) return
    throw e
  }
  for (const AccessKeyId of keys)
    await gone(
      aws.call('DeleteAccessKey', (o) => aws.iam.send(new DeleteAccessKeyCommand({ UserName, AccessKeyId }), o), hide),
    )
  const inline = await pages((Marker) =>
    aws
      .call('ListUserPolicies', (o) => aws.iam.send(new ListUserPoliciesCommand({ UserName, Marker }), o), hide)
      .then((r) => ({ items: r.PolicyNames ?? [], ...r })),
  )
  for (const PolicyName of inline)
    await gone(
      aws.call('DeleteUserPolicy', (o) => aws.iam.send(new DeleteUserPolicyCommand({ UserName, PolicyName }), o), hide),
    )
  const attached = await pages((Marker) =>
    aws
      .call(
        'ListAttachedUserPolicies',
        (o) => aws.iam.send(new ListAttachedUserPoliciesCommand({ UserName, Marker }), o),
        hide,
      )
      .then((r) => ({ items: (r.AttachedPolicies ?? []).map((p) => p.PolicyArn ?? ''), ...r })),
  )
  for (const PolicyArn of attached)
    await gone(
      aws.call('DetachUserPolicy', (o) => aws.iam.send(new DetachUserPolicyCommand({ UserName, PolicyArn }), o), hide),
    )
  const groups = await pages((Marker) =>
    aws
      .call('ListGroupsForUser', (o) => aws.iam.send(new ListGroupsForUserCommand({ UserName, Marker }), o), hide)
      .then((r) => ({ items: (r.Groups ?? []).map((g) => g.GroupName ?? ''), ...r })),
  )
  for (const GroupName of groups)
    await gone(
      aws.call(
        'RemoveUserFromGroup',
        (o) => aws.iam.send(new RemoveUserFromGroupCommand({ UserName, GroupName }), o),
        hide,
      ),
    )
  await gone(aws.call('DeleteUser', (o) => aws.iam.send(new DeleteUserCommand({ UserName }), o), hide))
}

/** Waits for a deletion; what is already gone is deleted. */
async function gone(call: Promise<unknown>): Promise<void> {
  try {
    await call
  } catch (e) {
    if (!isNoSuchEntity(e)) throw e
  }
}

/** Every item of a paginated IAM listing. */
async function pages(
  fetch: (marker: string | undefined) => Promise<{ items: string[]; IsTruncated?: boolean; Marker?: string }>,
): Promise<string[]> {
  const out: string[] = []
  let marker: string | undefined
  for (;;) {
    const page = await fetch(marker)
    out.push(...page.items.filter((i) => i !== ''))
    if (!page.IsTruncated || !page.Marker) return out
    marker = page.Marker
  }
}
