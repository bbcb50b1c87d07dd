// The README's tour runs as written: every command in its tour blocks succeeds against a dev
// server, with the outputs its comments promise.
import t from 'tap'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sh, startDaemon, tempDir } from './helpers/daemon.js'

const root = fileURLToPath(new URL('../', import.meta.url))
const readme = await fs.readFile(path.join(root, 'README.md'), 'utf8')
const tour = readme.slice(readme.indexOf('## A one-minute tour'), readme.indexOf('## Configuration'))
const blocks = [...tour.matchAll(/```sh\n([^]*?)```/g)].map((m) => m[1]!)

t.test('the one-minute tour', async (t) => {
  t.ok(blocks.length >= 3, 'the tour has its shell, CLI and curl blocks')
  // A home of its own: the CLI must find the dev server at the default socket, as in the README.
  const home = await tempDir(t, 'sfs-readme-')
  const env = { HOME: home, XDG_RUNTIME_DIR: '', XDG_DATA_HOME: '', SECRETFS_ADDR: '' }
  await startDaemon(t, { args: ['--dev'], mountpoint: path.join(home, 'secrets'), env })
  for (const block of blocks) {
    for (const line of block.split('\n').filter((l) => l.trim() !== '')) {
      const [command = '', comment] = line.split(/\s+# /)
      const r = await sh(command, { cwd: root, env })
      t.equal(r.code, 0, command, { stderr: r.stderr })
      const promise = comment?.trim()
      if (promise && (promise.startsWith('Successfully') || promise === 'hunter2'))
        t.equal(r.stdout.trim(), promise, `${command} prints ${promise}`)
      if (promise === 'secret  sys') t.same(r.stdout.split('\n').filter(Boolean), ['secret', 'sys'])
    }
  }
})
