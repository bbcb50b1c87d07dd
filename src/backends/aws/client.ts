// The one place that builds the IAM and STS clients from config/root, and that turns whatever an
// AWS call throws into an `upstream` error whose message is safe to show and to log.

import { IAMClient } from '@aws-sdk/client-iam'
import { STSClient } from '@aws-sdk/client-sts'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { SecretfsError } from '../../errors.js'
import type { RootConfig } from './path-config-root.js'

/** How long an AWS call may take, in milliseconds. */
export interface AwsTimeouts {
  /** To open a connection. */
  connect: number
  /** For one HTTP request to be answered. */
  request: number
  /** For one call, retries included: nothing waits on AWS longer than this. */
  call: number
}

export const DEFAULT_TIMEOUTS: AwsTimeouts = { connect: 5_000, request: 30_000, call: 60_000 }

/** An AWS call that failed: `code` is AWS's error code ('NoSuchEntity'), or the network's. */
export class AwsError extends SecretfsError {
  readonly code: string
  /** AWS answered, and refused (a 4xx): the call did nothing. Otherwise it may have been done. */
  readonly refused: boolean
  constructor(code: string, message: string, refused = false) {
    super('upstream', message)
    this.code = code
    this.refused = refused
  }
}

export const isNoSuchEntity = (e: unknown): boolean => e instanceof AwsError && e.code === 'NoSuchEntity'

export function defaultRegion(): string {
  return process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1'
}

export class AwsClients {
  readonly iam: IAMClient
  readonly sts: STSClient
  readonly #config: RootConfig
  readonly #timeouts: AwsTimeouts
  /** Strings no message may carry: the secret key they sign with. */
  readonly #secrets: string[]

  constructor(config: RootConfig, timeouts: AwsTimeouts) {
    this.#config = config
    this.#timeouts = timeouts
    this.#secrets = config.secret_key ? [config.secret_key] : []
    const common = {
      region: config.region || defaultRegion(),
      // Without keys, the SDK's default chain: the daemon's own environment, profile or role.
      credentials: config.access_key
        ? { accessKeyId: config.access_key, secretAccessKey: config.secret_key }
        : undefined,
      // Vault's max_retries -1 means the SDK's default.
      maxAttempts: config.max_retries >= 0 ? config.max_retries + 1 : undefined,
      requestHandler: new NodeHttpHandler({ connectionTimeout: timeouts.connect, requestTimeout: timeouts.request }),
    }
    this.iam = new IAMClient({ ...common, endpoint: config.iam_endpoint || undefined })
    this.sts = new STSClient({ ...common, endpoint: config.sts_endpoint || undefined })
  }

  /** Clients that sign with `keys` instead of config/root's, with the same endpoints, region and bounds. */
  signingWith(keys: { accessKeyId: string; secretAccessKey: string }): AwsClients {
    return new AwsClients(
      { ...this.#config, access_key: keys.accessKeyId, secret_key: keys.secretAccessKey },
      this.#timeouts,
    )
  }

  /**
   * Runs one AWS call named `op` ('CreateUser'), bounded in time; any failure becomes an
   * AwsError. `hide` lists further strings its message must not carry (a user name).
   */
  async call<T>(
    op: string,
    send: (options: { abortSignal: AbortSignal }) => Promise<T>,
    hide: string[] = [],
  ): Promise<T> {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), this.#timeouts.call)
    try {
      return await send({ abortSignal: controller.signal })
    } catch (e) {
      if (controller.signal.aborted)
        throw new AwsError('Timeout', `AWS did not answer ${op} within ${this.#timeouts.call / 1000} s`)
      throw this.#error(op, e, hide)
    } finally {
      clearTimeout(timer)
    }
  }

  destroy(): void {
    this.iam.destroy()
    this.sts.destroy()
  }

  #error(op: string, e: unknown, hide: string[]): AwsError {
    const err = (e ?? {}) as { name?: unknown; code?: unknown; message?: unknown; $metadata?: unknown; Code?: unknown }
    const message = this.#clean(typeof err.message === 'string' ? err.message : '', hide)
    if (err.name === 'TimeoutError')
      return new AwsError('Timeout', `AWS did not answer ${op} in time${message ? ` (${message})` : ''}`)
    if (err.$metadata !== undefined && typeof err.name === 'string' && err.name !== 'Error') {
      // The SDK names modelled errors 'NoSuchEntityException'; AWS's code is 'NoSuchEntity'.
      const code = typeof err.Code === 'string' ? err.Code : err.name.replace(/Exception$/, '')
      const status = (err.$metadata as { httpStatusCode?: unknown }).httpStatusCode
      const refused = typeof status === 'number' && status >= 400 && status < 500
      return new AwsError(code, `AWS refused ${op}: ${code}${message ? ` (${message})` : ''}`, refused)
    }
    const code = typeof err.code === 'string' ? err.code : typeof err.name === 'string' ? err.name : 'Error'
    return new AwsError(code, `AWS could not be reached for ${op}: ${code}${message ? ` (${message})` : ''}`)
  }

  /** An AWS message, as a message of ours may quote it: no secret, no name, one short line. */
  #clean(message: string, hide: string[]): string {
    let out = message
    for (const s of this.#secrets) if (s) out = out.split(s).join('[secret]')
    for (const s of hide) if (s) out = out.split(s).join('[name]')
    out = out
      .replace(/[\x00-\x1f\x7f]/g, ' ')
      .replace(/ {2,}/g, ' ')
      .trim()
    return out.length > 300 ? out.slice(0, 300) + '…' : out
  }
}
