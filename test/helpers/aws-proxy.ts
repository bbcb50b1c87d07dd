// Test helper: an HTTP proxy in front of an AWS-compatible server (moto) that sees each call's
// Action and signing key, and can forward it, answer it with an error of its own, hold it forever
// (the daemon is killed meanwhile), or forward it late; and can refuse a new key's first calls, as
// AWS does for some seconds after CreateAccessKey. Closed in teardown.

import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Scope } from './daemon.js'

export type Verdict =
  | 'forward'
  /** Never answered: for a crash mid-way. */
  | 'hold'
  /** Forwarded after a wait: a slow AWS. */
  | { delayMs: number }
  | { status: number; code: string; message: string }

export interface AwsProxy {
  endpoint: string
  /** Every Action seen, in order. */
  actions: string[]
  /** The access key ID that signed each call ('' if none), in the order of `actions`. */
  signers: string[]
  /**
   * How many of the first calls signed with each key not in `knownKeys` are refused with
   * InvalidClientTokenId, before `decide` is asked: 0 (the default) refuses none, Infinity all.
   */
  refuseNewKeys: number
  /** Keys AWS already accepts (the admin's): never refused for being new. */
  knownKeys: Set<string>
  /** How many calls signed with each new key were refused so far. */
  refused: Map<string, number>
  /** Decides what happens to each call (default: forward everything). */
  decide: (action: string) => Verdict
}

/** AWS's answer to a call signed with a key it does not (yet) know. */
const NEW_KEY: Verdict = {
  status: 403,
  code: 'InvalidClientTokenId',
  message: 'The security token included in the request is invalid.',
}

/** The access key ID of a SigV4 `Authorization: AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, ...`. */
function signer(authorization: string | undefined): string {
  return /\bCredential=([^/,\s]+)\//.exec(authorization ?? '')?.[1] ?? ''
}

export async function startAwsProxy(t: Scope, upstream: string): Promise<AwsProxy> {
  const target = new URL(upstream)
  const held = new Set<http.ServerResponse>()
  const proxy: AwsProxy = {
    endpoint: '',
    actions: [],
    signers: [],
    refuseNewKeys: 0,
    knownKeys: new Set(),
    refused: new Map(),
    decide: () => 'forward',
  }
  /** Whether this call is one of its new key's first `refuseNewKeys`; counts it if so. */
  const tooNew = (key: string) => {
    if (key === '' || proxy.knownKeys.has(key)) return false
    const n = proxy.refused.get(key) ?? 0
    if (n >= proxy.refuseNewKeys) return false
    proxy.refused.set(key, n + 1)
    return true
  }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const action = new URLSearchParams(body.toString()).get('Action') ?? ''
      const key = signer(req.headers.authorization)
      proxy.actions.push(action)
      proxy.signers.push(key)
      const verdict = tooNew(key) ? NEW_KEY : proxy.decide(action)
      if (verdict === 'hold') {
        held.add(res)
        return
      }
      if (typeof verdict === 'object' && 'delayMs' in verdict) {
        setTimeout(() => forward(req, res, body), verdict.delayMs)
        return
      }
      if (verdict !== 'forward') {
        res.writeHead(verdict.status, { 'Content-Type': 'text/xml' })
        res.end(
          `<ErrorResponse><Error><Type>Sender</Type><Code>${verdict.code}</Code><Message>${verdict.message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>`,
        )
        return
      }
      forward(req, res, body)
    })
  })
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
    const out = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
      },
    )
    out.on('error', () => res.destroy())
    out.end(body)
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(async () => {
    for (const res of held) res.destroy()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return proxy
}
