// The README's tour runs as written: every command in its tour blocks, against a dev server, prints
// what this file expects of it (and what the README's comment promises), and nothing on stderr.
// A line added to the tour fails here until its output is written down below.
import t from 'tap'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sh, startDaemon } from './helpers/daemon.js'
import { tourHome } from './helpers/readme.js'

const root = fileURLToPath(new URL('../', import.meta.url))
const readme = await fs.readFile(path.join(root, 'README.md'), 'utf8')
const tour = readme.slice(readme.indexOf('## A one-minute tour'), readme.indexOf('## Configuration'))
const blocks = [...tour.matchAll(/```sh\n([^]*?)```/g)].map((m) => m[1]!)

interface Expected {
  /** All of stdout, or what of it is compared (a JSON body's fields, say). */
  stdout: string | { parse: (stdout: string) => unknown; equals: unknown }
  /** Commands (not in the README) run after it, and what they print: what the line promises. */
  then?: [command: string, stdout: string][]
}

const MOUNTS_WITH_GENERIC =
  'Path      Type     Description\ngeneric/  generic\nsecret/   generic  generic secret storage\n' +
  'sys/      system   system endpoints used for control, policy and debugging\n'

/** Each tour command (as written, without its comment) and what it must print. */
const EXPECTED = new Map<string, Expected>([
  ['ls ~/secrets', { stdout: 'secret\nsys\n' }],
  ['echo -n hunter2 > ~/secrets/secret/db-password', { stdout: '' }],
  ['cat ~/secrets/secret/db-password', { stdout: 'hunter2' }],
  [
    'cat ~/secrets/sys/mounts',
    {
      stdout:
        'Path     Type     Description\nsecret/  generic  generic secret storage\n' +
        'sys/     system   system endpoints used for control, policy and debugging\n',
    },
  ],
  ['mkdir ~/secrets/generic', { stdout: '', then: [['cat ~/secrets/sys/mounts', MOUNTS_WITH_GENERIC]] }],
  ['echo -n other > ~/secrets/generic/db-password', { stdout: '' }],
  [
    'mv ~/secrets/generic ~/secrets/team',
    { stdout: '', then: [['ls ~/secrets && cat ~/secrets/team/db-password', 'secret\nsys\nteam\nother']] },
  ],
  ['rmdir ~/secrets/team', { stdout: '', then: [['ls ~/secrets', 'secret\nsys\n']] }],
  ['npx secretfs mount generic', { stdout: "Successfully mounted 'generic' at 'generic'!\n" }],
  ['npx secretfs mounts', { stdout: MOUNTS_WITH_GENERIC }],
  ['npx secretfs write secret/db user=app password=hunter2', { stdout: 'Success! Data written to: secret/db\n' }],
  [
    'npx secretfs read secret/db',
    { stdout: 'Key         Value\n---         -----\npassword    hunter2\nuser        app\n' },
  ],
  ['npx secretfs read secret/db --field password', { stdout: 'hunter2' }],
  [
    'npx secretfs remount generic team',
    {
      stdout: "Successfully remounted 'generic' to 'team'!\n",
      then: [['ls ~/secrets', 'secret\nsys\nteam\n']],
    },
  ],
  [
    'npx secretfs unmount team/',
    { stdout: "Successfully unmounted 'team/'!\n", then: [['ls ~/secrets', 'secret\nsys\n']] },
  ],
  [
    'curl --unix-socket ~/.local/share/secretfs/secretfs.sock http://localhost/v1/sys/mounts',
    {
      stdout: {
        parse: (out) =>
          Object.entries((JSON.parse(out) as { data: Record<string, { type: string }> }).data).map(
            ([p, m]) => `${p} ${m.type}`,
          ),
        equals: ['secret/ generic', 'sys/ system'],
      },
    },
  ],
])

t.test('the one-minute tour', async (t) => {
  t.ok(blocks.length >= 3, 'the tour has its shell, CLI and curl blocks')
  // A home of its own: the CLI must find the dev server at the default socket, as in the README.
  const { home, env } = await tourHome(t, 'sfs-readme-')
  await startDaemon(t, { args: ['--dev'], mountpoint: path.join(home, 'secrets'), env })
  const run = (command: string) => sh(command, { cwd: root, env })
  const seen = new Set<string>()
  for (const block of blocks) {
    for (const line of block.split('\n').filter((l) => l.trim() !== '')) {
      const [command = '', comment] = line.split(/\s+# /).map((s) => s.trim())
      seen.add(command)
      const expected = EXPECTED.get(command)
      if (!expected) {
        t.fail(`the tour's \`${command}\` has no expected output in test/readme.ts`)
        continue
      }
      // -fsS: an HTTP error status fails the command, and curl says why on stderr.
      const r = await run(command.replace(/^curl /, 'curl -fsS '))
      t.same([r.code, r.stderr], [0, ''], `${command} succeeds and prints nothing on stderr`)
      const want = expected.stdout
      if (typeof want === 'string') t.equal(r.stdout, want, `${command} prints what it should`)
      else t.same(want.parse(r.stdout), want.equals, `${command} prints what it should`)
      // The README's comment, where it shows output, is that output.
      if (comment && (comment.startsWith('Successfully') || comment === 'hunter2'))
        t.equal(r.stdout.trim(), comment, `${command} prints what the README says`)
      if (comment === 'secret  sys') t.equal(r.stdout, 'secret\nsys\n', `${command} prints what the README says`)
      for (const [after, out] of expected.then ?? [])
        t.equal((await run(after)).stdout, out, `after ${command}: ${after}`)
    }
  }
  t.same(
    [...EXPECTED.keys()].filter((c) => !seen.has(c)),
    [],
    'every command expected here is in the tour',
  )
})
