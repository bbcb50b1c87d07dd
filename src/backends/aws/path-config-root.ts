// config/root: the credentials and endpoints the backend calls AWS with. A read gives everything
// but secret_key, which never leaves the store.

import { invalid, notFound } from '../../errors.js'
import type { StorageView } from '../../barrier/barrier.js'
import type { FieldData } from '../framework/fields.js'
import { getJson, putJson } from '../framework/json-entry.js'
import type { PathSpec } from '../framework/path-backend.js'
import { fieldsValue, fileInfo } from '../framework/present.js'
import type { AwsState } from './state.js'

export interface RootConfig {
  access_key: string
  secret_key: string
  region: string
  iam_endpoint: string
  sts_endpoint: string
  /** -1: the SDK's default. */
  max_retries: number
}

const KEY = 'config/root'

export const EMPTY_ROOT: RootConfig = {
  access_key: '',
  secret_key: '',
  region: '',
  iam_endpoint: '',
  sts_endpoint: '',
  max_retries: -1,
}

export async function readRootConfig(storage: StorageView) {
  const entry = await getJson<RootConfig>(storage, KEY)
  return entry && { ...entry, data: { ...EMPTY_ROOT, ...entry.data } }
}

function shown(c: RootConfig): Record<string, unknown> {
  return {
    access_key: c.access_key,
    region: c.region,
    iam_endpoint: c.iam_endpoint,
    sts_endpoint: c.sts_endpoint,
    max_retries: c.max_retries,
  }
}

function endpoint(d: FieldData, name: string): string {
  const v = (d.string(name) ?? '').trim()
  if (v === '') return ''
  let url: URL
  try {
    url = new URL(v)
  } catch {
    throw invalid(`${name} must be a URL such as https://iam.amazonaws.com`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(`${name} must be an http or https URL`)
  return v
}

export function configRootPath(state: AwsState): PathSpec {
  return {
    pattern: 'config/root',
    what: 'the root configuration (config/root)',
    fields: {
      access_key: 'string',
      secret_key: 'string',
      region: 'string',
      iam_endpoint: 'string',
      sts_endpoint: 'string',
      max_retries: 'int',
    },
    async stat() {
      const entry = await readRootConfig(state.storage)
      return entry && fileInfo(entry, fieldsValue(shown(entry.data)).length)
    },
    async read() {
      const entry = await readRootConfig(state.storage)
      if (!entry) throw notFound('config/root is not set: write access_key=… secret_key=… (and region=…) to it')
      return { value: fieldsValue(shown(entry.data)), created: entry.created, modified: entry.modified }
    },
    async write(_params, d) {
      // As Vault: a write replaces the whole configuration.
      const config: RootConfig = {
        access_key: (d.string('access_key') ?? '').trim(),
        secret_key: (d.string('secret_key') ?? '').trim(),
        region: (d.string('region') ?? '').trim(),
        iam_endpoint: endpoint(d, 'iam_endpoint'),
        sts_endpoint: endpoint(d, 'sts_endpoint'),
        max_retries: d.number('max_retries') ?? -1,
      }
      if ((config.access_key === '') !== (config.secret_key === ''))
        throw invalid(
          'access_key and secret_key go together (a read never shows secret_key, so give it again), or give neither to use the AWS credentials of the secretfs daemon',
        )
      if (config.max_retries < -1) throw invalid('max_retries must be -1 (the AWS SDK default) or more')
      if (config.region !== '' && !/^[a-z0-9-]+$/.test(config.region))
        throw invalid('region must be an AWS region name such as us-east-1')
      const old = await readRootConfig(state.storage)
      await putJson(state.storage, KEY, config, old?.created)
      state.configChanged()
    },
  }
}
