// The real CLI against a control API served in this process: failures.
import path from 'node:path'
import t from 'tap'
import { socketDir } from '../helpers/api-fixture.js'
import { runCli, withApi } from '../helpers/cli-run.js'

t.test('failures that help, and their exit codes', async (t) => {
  const { api, cli } = await withApi(t)
  const dir = await socketDir(t)
  const none = await runCli(['read', 'secret/x'], { env: { SECRETFS_ADDR: path.join(dir, 'nothing.sock') } })
  t.equal(none.code, 1)
  t.match(none.stderr, /no secretfs daemon is running at .*nothing\.sock/)
  t.match(none.stderr, /secretfs server/)

  const missing = await cli(['read', 'secret/nope'])
  t.same([missing.code, missing.stderr], [1, 'Error: No value found at secret/nope\n'])
  const type = await cli(['mount', 'nosuchtype'])
  t.equal(type.code, 1)
  t.match(type.stderr, /Error mounting 'nosuchtype' at 'nosuchtype': unknown backend type; known types: generic/)
  for (const hostile of ['__proto__', 'constructor', 'valueOf', 'hasOwnProperty']) {
    const r = await cli(['mount', hostile, '--path', 'oops'])
    t.same(
      [r.code, r.stderr],
      [1, `Error mounting '${hostile}' at 'oops': unknown backend type; known types: generic, aws, database\n`],
      `mount ${hostile}`,
    )
  }
  const mounted = JSON.parse((await cli(['mounts', '--format', 'json'])).stdout) as object
  t.same(Object.keys(mounted).sort(), ['secret/', 'sys/'], 'nothing was mounted')
  t.match((await cli(['unmount', 'nowhere/'])).stderr, /Error unmounting 'nowhere\/': no mount at that path/)
  t.match((await cli(['mount', 'generic', '--path', 'secret'])).stderr, /already mounted/)
  t.match((await cli(['write', 'secret/a/../b', 'k=v'])).stderr, /cannot contain '.' or '..'/)
  // What Node makes of an argument that is not UTF-8: U+FFFD for each byte it could not decode.
  for (const args of [
    ['write', 'secret/\uFFFD', 'k=v'],
    ['read', 'secret/\uFFFD'],
    ['mount', 'generic', '--path', 'x\uFFFD'],
    ['remount', 'secret', 'x\uFFFD'],
  ]) {
    const r = await cli(args)
    t.equal(r.code, 1, args.join(' '))
    t.match(r.stderr, /: a path must be UTF-8 text: this one has bytes that are not, or the character U\+FFFD\n$/)
  }
  for (const pair of ['k=\uFFFD', '\uFFFD=v']) {
    const r = await cli(['write', 'secret/x', 'a=b', pair])
    t.equal(r.code, 1, pair)
    t.match(r.stderr, /^Error: argument 2 after the path is not UTF-8 text \(or holds the character U\+FFFD\)\n/)
  }
  t.same((await cli(['list', 'secret/'])).stdout, '', 'nothing was written')

  for (const args of [
    [],
    ['bogus'],
    ['read'],
    ['read', 'a', 'b'],
    ['read', 'x', '--format', 'xml'],
    ['write', 'secret/x'],
    ['write', 'secret/x', 'novalue'],
    ['write', 'secret/x', '-', 'a=b'],
    ['list'],
    ['mount'],
    ['remount', 'a'],
    ['read', 'x', '--nope'],
    ['lease', 'renew'],
  ]) {
    const r = await cli(args)
    t.equal(r.code, 2, `usage: secretfs ${args.join(' ')}`)
    t.match(r.stderr, /^Error: /)
    t.notMatch(r.stderr, /\n +at /, 'no stack trace')
  }
  t.notMatch(
    (await cli(['write', 'secret/x', 'supersecretvalue'])).stderr,
    /supersecretvalue/,
    'a bad argument is not echoed',
  )

  api.core.seal()
  const sealed = await cli(['read', 'secret/x'])
  t.equal(sealed.code, 1)
  t.match(sealed.stderr, /secretfs is sealed\.\nUnseal it with `secretfs unseal`/)
  t.match((await cli(['mounts'])).stderr, /sealed/)
})
