// The real CLI against a control API served in this process: fast path.
import t from 'tap'
import { refusingYargs, withApi } from '../helpers/cli-run.js'

t.test('the fast path and yargs agree', async (t) => {
  const { api, cli } = await withApi(t)
  await api.core.write('secret/a', Buffer.from('{"k":"v"}'))
  for (const args of [
    ['read', 'secret/a'],
    ['read', 'secret/a', '--format=json'],
    ['read', '--field', 'k', 'secret/a'],
    ['list', 'secret/'],
    ['list', 'secret/', '--format', 'json'],
    ['read', 'secret/missing'],
    ['write', 'secret/b', 'x=1'],
    ['write', 'secret/b', '-'],
    ['write', 'secret/b', '-', 'x=1'],
    ['delete', 'secret/b'],
  ]) {
    // From the same store each time, so that what each path stored is compared too.
    const run = async (env: NodeJS.ProcessEnv) => {
      await api.core.write('secret/b', Buffer.from('before'))
      const r = await cli(args, 'from stdin\n', env)
      const stored = await api.core.read('secret/b').then(
        (v) => Buffer.from(v.value).toString(),
        (e: { kind: string }) => e.kind,
      )
      return { ...r, stored }
    }
    t.same(await run({ SECRETFS_CLI_NO_FAST_PATH: '1' }), await run({}), args.join(' '))
  }
})

t.test('read, list, write and delete on a plain command line never load yargs', async (t) => {
  const { api, cli } = await withApi(t)
  await api.core.write('secret/a', Buffer.from('{"k":"v"}'))
  const env = refusingYargs(t)
  for (const [args, stdout] of [
    [['read', 'secret/a', '--field', 'k'], 'v'],
    [['list', 'secret/', '--format', 'json'], '[\n  "a"\n]\n'],
    [['write', 'secret/b', 'x=1'], 'Success! Data written to: secret/b\n'],
    [['delete', 'secret/b'], 'Success! Data deleted at: secret/b\n'],
  ] as const) {
    const r = await cli([...args], undefined, env)
    t.same([r.code, r.stdout, r.stderr], [0, stdout, ''], args.join(' '))
  }
  const help = await cli(['read', '--help'], undefined, env)
  t.match(help.stderr, /yargs was loaded/, 'the hook does refuse yargs, which --help needs')
})
