// Test helper: an HTTP proxy in front of an AWS-compatible server (moto) that sees each call's
// Action and can forward it, answer it with an error of its own, or hold it forever (the daemon
// is killed meanwhile), or forward it late. Closed in teardown.

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
  /** Decides what happens to each call (default: forward everything). */
  decide: (action: string) => Verdict
}

export async function startAwsProxy(t: Scope, upstream: string): Promise<AwsProxy> {
  const target = new URL(upstream)
  const held = new Set<http.ServerResponse>()
  const proxy: AwsProxy = { endpoint: '', actions: [], decide: () => 'forward' }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const action = new URLSearchParams(body.toString()).get('Action') ?? ''
      proxy.actions.push(action)
      const verdict = proxy.decide(action)
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
