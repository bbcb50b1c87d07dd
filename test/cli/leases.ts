// Leases through every front end: the CLI (revoke and renew of the seed's era, `lease ...` of
// today's Vault), the API's sys/leases routes, and sys/leases/ on a real mount.
import t from 'tap'
import { captureLog } from '../helpers/capture-log.js'
import { withApi } from '../helpers/cli-run.js'
import { cloudCore, upstream } from '../helpers/cloud-backend.js'
import { mountInProcess, sh } from '../helpers/daemon.js'

const up = upstream({ ttl: 0, maxTtl: 0 })
const core = await cloudCore(t, up)
await core.mount('aws', 'aws')
const { api, cli } = await withApi(t, { core })
const idPattern = /^aws\/creds\/deploy\/[0-9a-f-]{36}$/

t.test('read prints the lease as the page does; revoke says what the page says', async (t) => {
  const read = await cli(['read', 'aws/creds/deploy'])
  t.equal(read.code, 0, read.stderr)
  const lines = read.stdout.split('\n')
  t.same(lines.slice(0, 2), ['Key                Value', '---                -----'])
  const id = lines[2]!.replace(/^lease_id +/, '')
  t.match(id, idPattern)
  t.match(
    lines.slice(3, 7).join('\n'),
    /^lease_duration +768h0m0s\nlease_renewable +true\nsecurity_token +<nil>\nuser +deploy-\d+$/,
  )
  const user = lines[6]!.replace(/^user +/, '')
  t.ok(up.users.has(user))
  const revoked = await cli(['revoke', id])
  t.same([revoked.code, revoked.stdout], [0, `Success! Revoked the secret with ID '${id}', if it existed.\n`])
  t.notOk(up.users.has(user), 'revoked upstream')
  t.equal((await cli(['revoke', id])).code, 0, 'a second revoke is no error: "if it existed"')
})

t.test('renew, lease lookup, list, renew, revoke (and --prefix, --force)', async (t) => {
  const json = JSON.parse((await cli(['read', 'aws/creds/deploy', '--format', 'json'])).stdout) as {
    lease_id: string
    lease_duration: number
    renewable: boolean
  }
  t.match(json, { lease_id: idPattern, lease_duration: 768 * 3600, renewable: true })
  const id = json.lease_id
  const renewed = await cli(['renew', id, '1h'])
  t.equal(
    renewed.stdout,
    `Key                Value\n---                -----\nlease_id           ${id}\nlease_duration     1h0m0s\nlease_renewable    true\n`,
  )
  const lookup = await cli(['lease', 'lookup', id])
  t.match(
    lookup.stdout,
    new RegExp(
      `^Key +Value\\n-+ +-+\\nexpire_time +\\S+Z\\nid +${id}\\nissue_time +\\S+Z\\nlast_renewal +\\S+Z\\nrenewable +true\\nttl +(59m\\d+s|1h0m0s)\\n$`,
    ),
  )
  const info = JSON.parse((await cli(['lease', 'lookup', id, '--format', 'json'])).stdout) as { ttl: number }
  t.ok(info.ttl > 3500 && info.ttl <= 3600)
  t.equal((await cli(['lease', 'renew', id, '--increment', '2h'])).stdout.split('\n')[3], 'lease_duration     2h0m0s')
  t.equal((await cli(['lease', 'list', 'aws/creds'])).stdout, 'Keys\n----\ndeploy/\n')
  t.equal((await cli(['lease', 'list', 'aws/creds/deploy/'])).stdout, `Keys\n----\n${id.split('/').pop()}\n`)
  const none = await cli(['lease', 'list', 'gcp/'])
  t.same([none.code, none.stdout, none.stderr], [0, '', "No leases found under 'gcp/'\n"])
  const missing = await cli(['lease', 'lookup', 'aws/creds/deploy/none'])
  t.same([missing.code, missing.stderr], [1, "Error looking up 'aws/creds/deploy/none': no lease with that ID\n"])
  t.equal((await cli(['lease', 'revoke', id])).stdout, `Success! Revoked lease: ${id}\n`)

  await cli(['read', 'aws/creds/a'])
  await cli(['read', 'aws/creds/b'])
  t.equal(
    (await cli(['lease', 'revoke', '--prefix', 'aws/creds/a'])).stdout,
    'Success! Revoked any leases with prefix: aws/creds/a\n',
  )
  t.same(core.listLeases('aws/creds/'), ['b/'])
  const [b] = core.listLeases('aws/creds/b/')
  up.failing.add(core.lookupLease(`aws/creds/b/${b}`).data.user as string)
  const refused = await cli(['revoke', '--prefix', 'aws/'])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /^Error revoking 'aws\/': 1 of 1 leases under that prefix could not be revoked \(they stay\)/)
  const forced = await cli(['lease', 'revoke', '--prefix', '--force', 'aws/'])
  t.equal(forced.stdout, 'Success! Force revoked any leases with prefix: aws/\n')
  t.same(core.listLeases(''), [])
  up.failing.clear()
  const usage = await cli(['revoke', '--force', 'aws/'])
  t.same([usage.code, usage.stderr.split('\n')[0]], [2, 'Error: --force works with --prefix only'])
})

t.test("the API: Vault's sys/leases routes and the old sys/revoke and sys/renew", async (t) => {
  const read = (await api.request('GET', '/v1/aws/creds/api')).json as { lease_id: string; renewable: boolean }
  const id = read.lease_id
  t.match(read, { lease_id: /^aws\/creds\/api\//, renewable: true })
  const lookup = await api.request('PUT', '/v1/sys/leases/lookup', JSON.stringify({ lease_id: id }))
  t.match(lookup.json, { data: { id, renewable: true, last_renewal: null } })
  const list = await api.request('LIST', '/v1/sys/leases/lookup/aws/creds')
  t.same(list.json.data, { keys: ['api/'] })
  const renew = await api.request('PUT', '/v1/sys/leases/renew', JSON.stringify({ lease_id: id, increment: 60 }))
  t.match(renew.json, { lease_id: id, lease_duration: 60, renewable: true })
  t.equal((await api.request('PUT', `/v1/sys/renew/${id}`, '{"increment":"2m"}')).json.lease_duration, 120)
  t.equal((await api.request('PUT', '/v1/sys/leases/lookup', '{}')).status, 400)
  t.equal((await api.request('PUT', '/v1/sys/leases/lookup', JSON.stringify({ lease_id: 'x/y' }))).status, 404)
  t.equal((await api.request('GET', '/v1/sys/leases/renew')).status, 405)
  t.equal((await api.request('PUT', `/v1/sys/revoke/${id}`)).status, 204)
  t.same(core.listLeases(''), [])
  await api.request('GET', '/v1/aws/creds/p')
  t.equal((await api.request('PUT', '/v1/sys/leases/revoke-prefix/aws')).status, 204)
  t.same(core.listLeases(''), [])
  t.equal((await api.request('PUT', '/v1/sys/leases/revoke-prefix/')).status, 400, 'no prefix: refused, not everything')
})

t.test('sys/leases/ on a mount: ls, cat, rm revokes one, rm -r revokes a directory', async (t) => {
  const log = captureLog()
  const { mountpoint: mnt } = await mountInProcess(t, core, log)
  const root = (cmd: string) => sh(cmd, { cwd: mnt })
  t.equal((await root('ls sys')).stdout, 'health\nleases\nmounts\nmounts.json\nseal-status\n')
  t.equal((await root('ls sys/leases')).stdout, '')
  const doc = JSON.parse((await root('cat aws/creds/deploy')).stdout) as { lease_id: string; lease_duration: number }
  t.match(doc, { lease_id: idPattern, lease_duration: 768 * 3600, lease_renewable: true, expiration: /Z$/ })
  const name = doc.lease_id.split('/').pop()!
  const users = up.users.size
  t.equal((await root('ls sys/leases/aws/creds/deploy')).stdout, name + '\n')
  t.match((await root('ls -l sys/leases/aws/creds')).stdout, /^dr-x------ .* deploy$/m)
  const info = JSON.parse((await root(`cat sys/leases/aws/creds/deploy/${name}`)).stdout) as Record<string, unknown>
  t.match(info, { id: doc.lease_id, renewable: true, issue_time: /Z$/, expire_time: /Z$/, ttl: Number })
  t.match((await root(`echo x > sys/leases/aws/creds/deploy/${name}`)).stderr, /Permission denied/)
  t.equal((await root(`rm sys/leases/aws/creds/deploy/${name}`)).code, 0)
  t.same(core.listLeases(''), [], 'rm revoked it')
  t.equal(up.users.size, users - 1)
  await root('cat aws/creds/a aws/creds/a aws/creds/b > /dev/null')
  t.equal(up.users.size, users + 2)
  const rm = await root('rm -r sys/leases/aws/creds/a')
  t.same([rm.code, rm.stderr], [0, ''])
  t.same(core.listLeases('aws/creds/'), ['b/'], 'rm -r revoked the directory')
  t.match((await root('rm -r sys/leases')).stderr, /sys\/leases/, 'sys/leases itself stays')
  t.same(core.listLeases(''), [], 'though every lease in it is revoked')
  t.match((await root('cat sys/leases/aws/creds/none')).stderr, /No such file or directory/)
})
