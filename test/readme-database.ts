// The README's database blocks run as written against a PostgreSQL 15 of the test's own: only the
// server's address is filled in (localhost:5432 is 127.0.0.1 and the test's port) and the
// superuser's password is given on stdin, where the README reads it.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { sh, startDaemon } from './helpers/daemon.js'
import { havePostgres, startPostgres } from './helpers/postgres.js'
import { commands, readmeBlocks, tourHome } from './helpers/readme.js'

if (!havePostgres(t)) process.exit(0)
const from = '## Dynamic secrets: PostgreSQL'
const [sqlBlock = ''] = await readmeBlocks(from, '## Piping', 'sql')
const [cliBlock = '', shellBlock = ''] = await readmeBlocks(from, '## Piping')

t.test("the README's database blocks, as written", async (t) => {
  const pg = await startPostgres(t)
  // A superuser of the test's own, to look on with once the tour has rotated postgres's password.
  await pg.query(`CREATE ROLE onlooker SUPERUSER LOGIN PASSWORD 'onlooker'`)
  const look = (sql: string) => pg.query(sql, { user: 'onlooker', password: 'onlooker' })
  const users = () => pg.madeUsers({ user: 'onlooker', password: 'onlooker' })
  await look("CREATE TABLE public.greeting (v text); INSERT INTO public.greeting VALUES ('hello')")

  const tour = await tourHome(t, 'sfs-readme-db-')
  await fs.writeFile(path.join(tour.work, 'readonly.sql'), sqlBlock)
  const env = { ...tour.env, PGPORT: String(pg.port) }
  await startDaemon(t, { args: ['--dev'], mountpoint: path.join(tour.home, 'secrets'), env })
  const here = (command: string) =>
    command.replaceAll('localhost:5432', `127.0.0.1:${pg.port}`).replaceAll('PGHOST=localhost', 'PGHOST=127.0.0.1')
  const run = (command: string, input?: string) => sh(here(command), { cwd: tour.work, env, ...(input && { input }) })

  const cli = commands(cliBlock)
  t.equal(cli.length, 6)
  t.equal((await run(cli[0]!)).stdout, "Successfully mounted 'database' at 'database'!\n")
  const config = await run(cli[1]!, pg.superPassword + '\n') // as echo would pipe it
  t.same([config.code, config.stdout, config.stderr], [0, 'Success! Data written to: database/config/pg\n', ''])
  t.equal((await run(cli[2]!)).stdout, 'Success! Data written to: database/roles/readonly\n')
  const read = await run(cli[3]!)
  t.match(read.stdout, /^lease_duration +1h0m0s$/m)
  t.match(read.stdout, /^username +v-secretfs-readonly-/m)
  const password = /^password +(\S+)$/m.exec(read.stdout)?.[1] ?? ''
  const username = /^username +(\S+)$/m.exec(read.stdout)?.[1] ?? ''
  t.equal(
    await pg.query('SELECT v FROM public.greeting', { user: username, password }),
    'hello',
    'the user reads what it was granted',
  )
  const exec = await run(cli[4]!)
  t.same([exec.code, exec.stderr], [0, ''])
  t.match(exec.stdout, /^ *current_user *\n-+\n *v-secretfs-readonly-\S+ *\n/, "psql ran as a user of exec's own")
  const execUser = /v-secretfs-readonly-\S+/.exec(exec.stdout)?.[0]
  t.notOk((await users()).includes(execUser!), 'which is gone once the command has exited')
  t.equal((await run(cli[5]!)).stdout, 'Success! Data written to: database/rotate-root/pg\n')
  t.not((await pg.psql('SELECT 1')).status, 0, "postgres's old password is refused")

  const shell = commands(shellBlock)
  t.equal(shell.length, 3)
  const cat = await run(shell[0]!)
  t.same([cat.code, cat.stderr], [0, ''])
  t.match(JSON.parse(cat.stdout), {
    username: /^v-secretfs-readonly-/,
    password: /^\w{32}$/,
    lease_id: /^database\/creds\/readonly\//,
  })
  const ls = await run(shell[1]!)
  t.match(ls.stdout, /^([0-9a-f-]{36}\n){2}$/, 'the two leases of the two reads')
  const shown = await run(shell[2]!)
  t.match(JSON.parse(shown.stdout), { connection_details: { username: 'postgres' } })
  t.notMatch(shown.stdout, /"password"/)
  t.equal((await users()).length, 2)
  t.equal((await run('npx secretfs unmount database')).code, 0)
  t.same(await users(), [], 'unmounting dropped them')
})
