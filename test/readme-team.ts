// The README's team block runs as written, on two "machines" (two homes, each with its own mount
// and socket) and a PostgreSQL 15 of the test's own: only the example URL is replaced by the
// test's database. A secret written on one is read on the other; one of them leads.
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { sh, startDaemon } from './helpers/daemon.js'
import { havePostgres, startPostgres } from './helpers/postgres.js'
import { commands, readmeBlocks, tourHome } from './helpers/readme.js'

if (!havePostgres(t)) process.exit(0)
t.setTimeout(180_000)
const EXAMPLE_URL = 'postgresql://secretfs:PASSWORD@db.internal:5432/secretfs'
const [block = ''] = await readmeBlocks('## For a team', '## Security model')

t.test("the README's team block, as written, on two machines", async (t) => {
  const pg = await startPostgres(t)
  const url = await pg.createDatabase()
  const lines = commands(block)
  t.equal(lines.length, 4)
  t.ok(lines[0]!.includes(EXAMPLE_URL))
  const machines = [await tourHome(t, 'sfs-team-1-'), await tourHome(t, 'sfs-team-2-')]
  const run = (m: (typeof machines)[number], command: string) =>
    sh(command.replaceAll(EXAMPLE_URL, url), { cwd: m.work, env: m.env })
  for (const m of machines) for (const line of lines.slice(0, 2)) t.equal((await run(m, line)).code, 0, line)
  const init = await run(machines[0]!, lines[2]!)
  t.same([init.code, init.stderr], [0, ''], 'init, once')

  const server = lines[3]!.split(/\s+/)
  t.same(server.slice(0, 3), ['npx', 'secretfs', 'server'])
  for (const m of machines) {
    const args = server.slice(3).map((w) => w.replace(/^~/, m.home))
    const at = args.indexOf('--mountpoint')
    const mountpoint = args.splice(at, 2)[1]!
    t.equal(mountpoint, path.join(m.home, 'secrets'))
    await startDaemon(t, { args, mountpoint, env: m.env })
  }

  const [one, two] = machines as [(typeof machines)[number], (typeof machines)[number]]
  t.equal((await run(one, 'echo x > ~/secrets/secret/k')).code, 0)
  let seen = ''
  for (let i = 0; i < 100 && seen !== 'x\n'; i++) {
    seen = (await run(two, 'cat ~/secrets/secret/k 2>/dev/null')).stdout
    if (seen !== 'x\n') await delay(50)
  }
  t.equal(seen, 'x\n', 'what one machine writes, the other reads')

  let modes: string[] = []
  for (let i = 0; i < 50; i++) {
    modes = await Promise.all(
      machines.map(async (m) => /^HA Mode +(.+)$/m.exec((await run(m, 'npx secretfs status')).stdout)?.[1] ?? ''),
    )
    if (modes.includes('active (leader)')) break
    await delay(100)
  }
  t.same([...modes].sort(), ['active (leader)', 'standby'], 'one leads')
})
