// `secretfs revoke LEASE_ID [--prefix] [--force]`: the command of the seed's era (today's is
// `secretfs lease revoke`). The secret is revoked when the command returns.

import { connect } from '../address.js'
import { UsageError, doing } from '../cli-error.js'
import { print } from '../output.js'

export interface RevokeArgs {
  leaseId: string
  prefix: boolean
  force: boolean
  address?: string
}

export async function run(args: RevokeArgs): Promise<void> {
  await revoke(args)
  print(`Success! Revoked the secret with ID '${args.leaseId}', if it existed.\n`)
}

/** Revokes one lease, or every lease under a prefix (`--force`: without asking the backend). */
export async function revoke(args: RevokeArgs): Promise<void> {
  if (args.force && !args.prefix)
    throw new UsageError('--force works with --prefix only', 'Use: secretfs revoke --prefix --force PREFIX')
  const client = connect(args.address)
  if (args.prefix) await doing(`revoking '${args.leaseId}'`, client.revokeLeasePrefix(args.leaseId, args.force))
  else await doing(`revoking '${args.leaseId}'`, client.revokeLease(args.leaseId))
}
