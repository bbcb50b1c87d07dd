// `secretfs status [--format table|json]`: whether the daemon runs, is initialised, is sealed.

import type { SealStatusResponse } from '../../api/api-client.js'
import { connect } from '../address.js'
import { keyValueTable, print, printJson, type Format } from '../output.js'

export interface StatusArgs {
  format: Format
  address?: string
}

export function statusTable(status: SealStatusResponse, socketPath: string): string {
  const rows: [string, unknown][] = [
    ['Initialized', status.initialized],
    ['Sealed', status.sealed],
  ]
  if (status.term !== undefined) rows.push(['Key Term', status.term])
  // Vault's HA rows: a store that daemons share has one leader, which revokes leases at expiry.
  rows.push(['HA Enabled', status.leader !== undefined])
  if (status.leader !== undefined) rows.push(['HA Mode', status.leader ? 'active (leader)' : 'standby'])
  rows.push(['Address', socketPath])
  return keyValueTable(rows)
}

export async function run(args: StatusArgs): Promise<void> {
  const client = connect(args.address)
  const { socketPath } = client
  const status = await client.sealStatus()
  if (args.format === 'json') return printJson({ ...status, address: socketPath })
  print(statusTable(status, socketPath))
}
