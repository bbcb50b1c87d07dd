// `secretfs renew LEASE_ID [INCREMENT]`: the command of the seed's era (today's is
// `secretfs lease renew`). Prints the renewed lease as Vault does.

import { goDuration } from '../../format/lease.js'
import { connect } from '../address.js'
import { doing } from '../cli-error.js'
import { keyValueTable, print, printJson, type Format } from '../output.js'

export interface RenewArgs {
  leaseId: string
  increment?: string
  format: Format
  address?: string
}

export async function run(args: RenewArgs): Promise<void> {
  const renewed = await doing(
    `renewing '${args.leaseId}'`,
    connect(args.address).renewLease(args.leaseId, args.increment),
  )
  if (args.format === 'json') return printJson(renewed)
  print(
    keyValueTable([
      ['lease_id', renewed.lease_id],
      ['lease_duration', goDuration(renewed.lease_duration)],
      ['lease_renewable', renewed.renewable],
    ]),
  )
}
