// The real CLI against a control API served in this process: walkthrough.
import t from 'tap'
import { withApi } from '../helpers/cli-run.js'

t.test('the seed walkthrough, word for word', async (t) => {
  const { api, cli } = await withApi(t)
  t.same(await cli(['mount', 'generic']), {
    code: 0,
    stdout: "Successfully mounted 'generic' at 'generic'!\n",
    stderr: '',
    stdoutBytes: Buffer.from("Successfully mounted 'generic' at 'generic'!\n"),
  })
  const mounts = await cli(['mounts'])
  t.equal(
    mounts.stdout,
    'Path      Type     Description\n' +
      'generic/  generic\n' +
      'secret/   generic  generic secret storage\n' +
      'sys/      system   system endpoints used for control, policy and debugging\n',
  )
  t.equal((await cli(['write', 'secret/hello', 'value=world'])).stdout, 'Success! Data written to: secret/hello\n')
  t.equal((await cli(['write', 'generic/other', 'value=mine'])).code, 0)
  t.equal((await cli(['read', 'secret/hello', '--field', 'value'])).stdout, 'world')
  t.match(
    (await cli(['read', 'generic/hello'])).stderr,
    /No value found at generic\/hello/,
    'generic/ does not see secret/',
  )
  t.same(JSON.parse((await cli(['list', 'generic/', '--format', 'json'])).stdout), ['other'])
  t.equal((await cli(['remount', 'generic', 'moved'])).stdout, "Successfully remounted 'generic' to 'moved'!\n")
  t.equal((await cli(['read', 'moved/other', '--field', 'value'])).stdout, 'mine', 'remount keeps the data')
  t.equal((await cli(['unmount', 'moved/'])).stdout, "Successfully unmounted 'moved/'!\n")
  t.same(await api.core.list(''), ['secret/', 'sys/'])
  t.equal((await cli(['mount', 'generic'])).code, 0)
  t.same(await api.core.list('generic/'), [], 'unmount deleted the data')
  t.equal(
    (
      await cli([
        'mount',
        'generic',
        '--path',
        'team',
        '--description',
        'the team',
        '--default-lease-ttl',
        '1h',
        '--max-lease-ttl',
        '24h',
      ])
    ).stdout,
    "Successfully mounted 'generic' at 'team'!\n",
  )
  const json = JSON.parse((await cli(['mounts', '--format', 'json'])).stdout)
  t.match(json['team/'], {
    type: 'generic',
    description: 'the team',
    config: { default_lease_ttl: 3600, max_lease_ttl: 86400 },
  })
})
