// current/NAME/: each role's *current* credential, for programs that ask for credentials on every
// run (the aws CLI runs credential_process each time). It is made, with a lease, on the first read
// and served to every read until less than a third of its lease is left; the next read then makes
// a new one (the old one lives on until its own lease ends). Three files give it in the forms
// programs take: credential_process (the AWS CLI's and SDKs' JSON), env (export lines for eval) and
// json (as creds/NAME prints). `rm` of any of them, or `rmdir` of the directory, revokes it now.
// It is kept in memory only, zeroed when replaced, revoked, sealed or unmounted.

import type { EntryInfo, Lease, LeaseAccess, ReadResult } from '../backend.js'
import { isDir, notDir, notFound, readOnly } from '../../errors.js'
import { awsCredentialOf, credentialProcessJson, exportLines, awsVariables } from '../../format/credentials.js'
import { leasedSecretJson } from '../../format/lease.js'
import { presentValue } from '../../core/secret-data.js'
import { GENERATED_SIZE } from '../framework/present.js'
import { mintCredentials } from './path-creds.js'
import { readRole, roleNames } from './path-roles.js'
import type { AwsState } from './state.js'

const DIR = 'current'

/** A current credential is replaced once less than this share of its lease is left. */
export const REPLACE_WHEN_LEFT = 1 / 3

const FORMS = new Map<string, (fields: Buffer, lease: Lease) => Buffer>([
  ['credential_process', (fields, lease) => Buffer.from(credentialProcessJson(credential(fields, lease)))],
  ['env', (fields, lease) => Buffer.from(exportLines(awsVariables(credential(fields, lease))))],
  ['json', (fields, lease) => leasedSecretJson(fields, lease)],
])

interface Current {
  /** The credential's fields as the backend made them (JSON); zeroed when let go. */
  fields: Buffer
  lease: Lease
  /** The role as it was when this was made: a rewritten role gets a new credential. */
  roleModified: number
}

export class CurrentCredentials {
  readonly #state: AwsState
  readonly #leases: LeaseAccess
  readonly #held = new Map<string, Current>()
  readonly #making = new Map<string, Promise<Current>>()
  #closed = false

  constructor(state: AwsState, leases: LeaseAccess) {
    this.#state = state
    this.#leases = leases
  }

  /** Whether `path` lies in current/. */
  static owns(path: string): boolean {
    return path === DIR || path.startsWith(DIR + '/')
  }

  async stat(path: string): Promise<EntryInfo | undefined> {
    const { name, form } = parse(path)
    const t = new Date(0)
    if (name === undefined) return { kind: 'dir', size: 0, created: t, modified: t }
    const role = await readRole(this.#state.storage, name)
    if (!role || (form !== undefined && !FORMS.has(form))) return undefined
    if (form === undefined) return { kind: 'dir', size: 0, created: role.created, modified: role.modified }
    const made = this.#held.get(name)?.lease.issued ?? role.modified
    return { kind: 'file', size: GENERATED_SIZE, created: made, modified: made, generated: true, readOnly: true }
  }

  async list(path: string): Promise<string[]> {
    const { name, form } = parse(path)
    if (name === undefined) return (await roleNames(this.#state.storage)).map((n) => n + '/')
    if (form !== undefined) throw (await this.stat(path)) ? notDir() : notFound()
    if (!(await readRole(this.#state.storage, name))) throw notFound('no such role')
    return [...FORMS.keys()].sort()
  }

  async read(path: string): Promise<ReadResult> {
    const { name, form } = parse(path)
    if (name === undefined || form === undefined) throw (await this.stat(path)) ? isDir() : notFound()
    const make = FORMS.get(form)
    if (!make) throw notFound()
    const current = await this.#current(name)
    return {
      value: make(current.fields, current.lease),
      created: current.lease.issued,
      modified: current.lease.issued,
      generated: true,
      readOnly: true,
    }
  }

  /** `rm` of a form, or `rmdir` of the role's directory: the current credential is revoked now. */
  async revoke(path: string): Promise<void> {
    const { name, form } = parse(path)
    if (name === undefined) throw readOnly('current/ holds one directory per role; remove one of those')
    if (!(await this.stat(path))) throw notFound()
    if (form !== undefined && !FORMS.has(form)) throw notFound()
    await this.#making.get(name)?.catch(() => {})
    const held = this.#held.get(name)
    if (held) await this.#leases.revoke(held.lease.id)
    // Revoked through the backend, which let it go (see dropped); gone already if it was not.
    this.#forget(name)
  }

  /** A lease ended (revoked or expired): the credential it held is no longer current. */
  dropped(lease: Lease): void {
    for (const [name, held] of this.#held) if (held.lease.id === lease.id) this.#forget(name)
  }

  /** Zeroes every credential held (seal, unmount). */
  close(): void {
    this.#closed = true
    for (const name of [...this.#held.keys()]) this.#forget(name)
  }

  /** The role's current credential, made now if it has none or the one it has is due. */
  async #current(name: string): Promise<Current> {
    const role = await readRole(this.#state.storage, name)
    if (!role) throw notFound('no such role: write roles/NAME first')
    const held = this.#held.get(name)
    if (held && held.roleModified === role.modified.getTime() && !due(held.lease)) return held
    // One credential at a time per role: reads that arrive while it is being made share it.
    let making = this.#making.get(name)
    if (!making) {
      making = this.#make(name, role.modified.getTime()).finally(() => this.#making.delete(name))
      this.#making.set(name, making)
    }
    return making
  }

  async #make(name: string, roleModified: number): Promise<Current> {
    const result = await mintCredentials(this.#state, name, 'creds')
    const fields = Buffer.from(result.value.buffer, result.value.byteOffset, result.value.length)
    if (!result.lease) {
      fields.fill(0)
      throw notFound('this role makes no leased credentials')
    }
    let lease: Lease
    try {
      lease = await this.#leases.register(`${DIR}/${name}`, result.lease)
    } catch (e) {
      fields.fill(0)
      throw e
    }
    await result.leased?.()
    if (this.#closed) {
      fields.fill(0)
      throw notFound()
    }
    this.#forget(name)
    const current = { fields, lease, roleModified }
    this.#held.set(name, current)
    return current
  }

  #forget(name: string): void {
    this.#held.get(name)?.fields.fill(0)
    this.#held.delete(name)
  }
}

/** Whether less than REPLACE_WHEN_LEFT of the lease is left. */
function due(lease: Lease, now = Date.now()): boolean {
  const total = lease.expires.getTime() - lease.issued.getTime()
  return lease.expires.getTime() - now < total * REPLACE_WHEN_LEFT
}

function credential(fields: Buffer, lease: Lease) {
  const aws = awsCredentialOf(presentValue(fields).data, lease.expires)
  if (!aws) throw notFound('the credential has no keys')
  return aws
}

/** 'current/NAME/FORM' → its parts ('current' alone has neither). */
function parse(path: string): { name?: string; form?: string } {
  const [, name, form, ...more] = path.split('/')
  if (more.length > 0) return { name: '', form: '' }
  return { ...(name !== undefined && { name }), ...(form !== undefined && { form }) }
}
