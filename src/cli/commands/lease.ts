// `secretfs lease list|lookup|renew|revoke`: today's Vault lease commands.

import { ApiError } from '../../api/api-client.js'
import { goDuration } from '../../format/lease.js'
import { connect } from '../address.js'
import { ContextError, doing } from '../cli-error.js'
import { keysTable, keyValueTable, print, printJson, type Format } from '../output.js'
import { revoke } from './revoke.js'
import { run as renew } from './renew.js'

export interface LeaseArgs {
  action: 'list' | 'lookup' | 'renew' | 'revoke'
  /** The lease ID, or for list and --prefix, a prefix. */
  id?: string
  increment?: string
  prefix: boolean
  force: boolean
  format: Format
  address?: string
}

export async function run(args: LeaseArgs): Promise<void> {
  const id = args.id ?? ''
  switch (args.action) {
    case 'list': {
      const prefix = id === '' || id.endsWith('/') ? id : id + '/'
      let keys: string[]
      try {
        keys = await connect(args.address).listLeases(prefix)
      } catch (e) {
        throw e instanceof ApiError ? new ContextError(`listing leases under '${id}'`, e) : e
      }
      if (args.format === 'json') return printJson(keys)
      if (keys.length === 0) return void process.stderr.write(`No leases found under '${id}'\n`)
      return print(keysTable(keys))
    }
    case 'lookup': {
      const info = await doing(`looking up '${id}'`, connect(args.address).lookupLease(id))
      if (args.format === 'json') return printJson(info)
      const rows: [string, unknown][] = Object.entries(info).map(([k, v]) => [
        k,
        k === 'ttl' ? goDuration(Number(v)) : v,
      ])
      return print(keyValueTable(rows.sort(([a], [b]) => (a < b ? -1 : 1))))
    }
    case 'renew':
      return renew({ leaseId: id, format: args.format, ...pick(args, 'increment', 'address') })
    case 'revoke': {
      await revoke({ leaseId: id, prefix: args.prefix, force: args.force, ...pick(args, 'address') })
      const what = args.prefix ? `${args.force ? 'Force revoked' : 'Revoked'} any leases with prefix` : 'Revoked lease'
      return print(`Success! ${what}: ${id}\n`)
    }
  }
}

function pick<K extends keyof LeaseArgs>(args: LeaseArgs, ...keys: K[]): Partial<Pick<LeaseArgs, K>> {
  return Object.fromEntries(keys.filter((k) => args[k] !== undefined).map((k) => [k, args[k]])) as Partial<
    Pick<LeaseArgs, K>
  >
}
