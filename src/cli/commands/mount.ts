// `secretfs mount TYPE [--path PATH] [--description TEXT] [--default-lease-ttl T] [--max-lease-ttl T]`

import type { MountRequest } from '../../api/api-client.js'
import { connect } from '../address.js'
import { doing } from '../cli-error.js'
import { print } from '../output.js'

export interface MountArgs {
  type: string
  path?: string
  description?: string
  defaultLeaseTtl?: string
  maxLeaseTtl?: string
  address?: string
}

export async function run(args: MountArgs): Promise<void> {
  const path = args.path ?? args.type
  const request: MountRequest = { type: args.type }
  if (args.description !== undefined) request.description = args.description
  if (args.defaultLeaseTtl !== undefined || args.maxLeaseTtl !== undefined)
    request.config = {
      ...(args.defaultLeaseTtl !== undefined && { default_lease_ttl: args.defaultLeaseTtl }),
      ...(args.maxLeaseTtl !== undefined && { max_lease_ttl: args.maxLeaseTtl }),
    }
  await doing(`mounting '${args.type}' at '${path}'`, connect(args.address).mount(path, request))
  print(`Successfully mounted '${args.type}' at '${path}'!\n`)
}
