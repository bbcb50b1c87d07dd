// The real CLI against a control API served in this process: help.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { runCli } from '../helpers/cli-run.js'

t.test('--help on every command, and completion', async (t) => {
  for (const c of [
    'init',
    'server',
    'migrate',
    'status',
    'seal',
    'unseal',
    'rotate',
    'mount',
    'mounts',
    'unmount',
    'remount',
    'write',
    'read',
    'list',
    'delete',
  ]) {
    const r = await runCli([c, '--help'])
    t.equal(r.code, 0, `${c} --help`)
    t.match(r.stdout, new RegExp(`secretfs ${c}`))
  }
  const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'))
  t.equal((await runCli(['--version'])).stdout, `${version}\n`, '--version')
  const top = await runCli(['--help'])
  t.match(top.stdout, /Exit codes: 0 done, 1 failed, 2 usage error/)
  t.match((await runCli(['completion'])).stdout, /secretfs --get-yargs-completions/)
})
