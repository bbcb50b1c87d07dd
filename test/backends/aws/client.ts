// The AWS clients' bounds and messages: a service that never answers ends in a timeout error, and
// no message carries the root secret key or a user's name, whatever AWS puts in its own.
import http from 'node:http'
import net from 'node:net'
import t, { type Test } from 'tap'
import { ListUsersCommand } from '@aws-sdk/client-iam'
import { AwsClients, DEFAULT_TIMEOUTS } from '../../../src/backends/aws/client.js'
import { makeAwsBackend } from '../../../src/backends/aws/backend.js'
import { EMPTY_ROOT } from '../../../src/backends/aws/path-config-root.js'
import { builtinBackends, Core } from '../../../src/core/core.js'
import { encodeFields } from '../../../src/core/secret-data.js'
import { kind } from '../../helpers/error-match.js'
import { freePort } from '../../helpers/moto.js'

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'

async function listen(t: Test, server: net.Server): Promise<string> {
  const sockets = new Set<net.Socket>()
  server.on('connection', (s: net.Socket) => sockets.add(s.on('error', () => {})))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
}

t.test('a service that accepts and never answers ends the read with a timeout error', async (t) => {
  let reached = false
  const server = net.createServer(() => (reached = true))
  const endpoint = await listen(t, server)
  const core = await Core.dev({
    backends: { ...builtinBackends, aws: makeAwsBackend({ timeouts: { connect: 500, request: 500, call: 1500 } }) },
  })
  t.teardown(() => core.close())
  await core.mount('aws', 'aws')
  await core.write(
    'aws/config/root',
    encodeFields({ access_key: 'AKIAEXAMPLE', secret_key: SECRET, iam_endpoint: endpoint, max_retries: '5' }),
  )
  await core.write('aws/roles/deploy', encodeFields({ policy: '{"Statement":[]}' }))
  await t.rejects(
    core.read('aws/creds/deploy'),
    kind('upstream', /^AWS did not answer CreateUser (in time|within 1.5 s)/),
  )
  t.ok(reached, 'the request reached the service')
})

t.test('a refused connection is an upstream error that names the call', async (t) => {
  const port = await freePort()
  const aws = new AwsClients(
    {
      ...EMPTY_ROOT,
      access_key: 'AKIAEXAMPLE',
      secret_key: SECRET,
      iam_endpoint: `http://127.0.0.1:${port}`,
      max_retries: 0,
    },
    DEFAULT_TIMEOUTS,
  )
  t.teardown(() => aws.destroy())
  await t.rejects(
    aws.call('ListUsers', (o) => aws.iam.send(new ListUsersCommand({}), o)),
    kind('upstream', /^AWS could not be reached for ListUsers: ECONNREFUSED/),
  )
})

t.test("AWS's own message is quoted without the secret key or the names it is told to hide", async (t) => {
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(403, { 'content-type': 'text/xml' })
      res.end(
        `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>key ${SECRET} may not touch secretfs-deploy-1-x\u0007 now</Message></Error><RequestId>1</RequestId></ErrorResponse>`,
      )
    })
  })
  const endpoint = await listen(t, server)
  const aws = new AwsClients(
    { ...EMPTY_ROOT, access_key: 'AKIAEXAMPLE', secret_key: SECRET, iam_endpoint: endpoint, max_retries: 0 },
    DEFAULT_TIMEOUTS,
  )
  t.teardown(() => aws.destroy())
  const e = await aws
    .call('ListUsers', (o) => aws.iam.send(new ListUsersCommand({}), o), ['secretfs-deploy-1-x'])
    .then(
      () => undefined,
      (e: Error) => e,
    )
  t.match(e, kind('upstream', /^AWS refused ListUsers: AccessDenied \(key \[secret\] may not touch \[name\] now\)$/))
  t.match(e, { code: 'AccessDenied', refused: true })
})
