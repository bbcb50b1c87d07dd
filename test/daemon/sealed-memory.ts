// After `secretfs seal`, the daemon's memory holds no copy of the passphrase and none of the
// secrets that passed through it, read as root from /proc/PID/mem: written and read through the
// mount, and through the CLI as raw bytes.
import t from 'tap'
import fs from 'node:fs/promises'
import path from 'node:path'
import { runCli } from '../helpers/cli-run.js'
import { sh, startDaemon, tempDir } from '../helpers/daemon.js'
import { countInMemory } from '../helpers/memory-scan.js'

t.test('a sealed daemon keeps no copy of the passphrase or of the secrets it served', async (t) => {
  const dir = await tempDir(t)
  const unique = (label: string) => `${label}-${Math.random().toString(36).slice(2)}-${'q'.repeat(24)}`
  const passphrase = unique('PASSPHRASE')
  const secrets = { fs: unique('VIA-MOUNT'), raw: unique('VIA-CLI-RAW'), field: unique('VIA-CLI-FIELD') }
  await fs.writeFile(path.join(dir, 'pass'), passphrase + '\n', { mode: 0o600 })
  const data = path.join(dir, 'data')
  const init = await runCli(['init', '--data', data, '--passphrase-file', path.join(dir, 'pass')])
  t.equal(init.code, 0, init.stderr)
  const d = await startDaemon(t, { args: ['--data', data, '--sealed'] })
  const cli = (args: string[], input?: string) =>
    runCli(args, { env: { SECRETFS_ADDR: d.socketPath }, ...(input !== undefined && { input }) })
  t.equal((await cli(['unseal', '--passphrase-file', path.join(dir, 'pass')])).code, 0)

  const mnt = d.mountpoint
  t.equal((await sh(`printf %s '${secrets.fs}' > secret/a && cat secret/a`, { cwd: mnt })).stdout, secrets.fs)
  t.equal((await cli(['write', 'secret/b', '-'], secrets.raw)).code, 0)
  t.equal((await cli(['read', 'secret/b', '--format', 'raw'])).stdout, secrets.raw)
  t.equal((await sh('cat secret/b', { cwd: mnt })).stdout, secrets.raw)
  t.equal((await cli(['write', 'secret/c', `k=${secrets.field}`])).code, 0)
  t.equal((await cli(['read', 'secret/c', '--field', 'k'])).stdout, secrets.field)

  t.equal((await cli(['seal'])).code, 0)
  const needles = [passphrase, secrets.fs, secrets.raw, secrets.field]
  // The socket's path is in the daemon's memory for sure: the scan can find what is there.
  const where: string[] = []
  const [control, ...counts] = await countInMemory(
    d.child.pid!,
    [d.socketPath, ...needles].map((n) => Buffer.from(n)),
    where,
  )
  t.ok(control! > 0, 'the scan finds a string the daemon holds')
  t.comment(`copies after seal: ${JSON.stringify(counts)}`)
  for (const w of where.filter((w) => !w.startsWith('needle 0 '))) t.comment(w)
  t.same(counts, [0, 0, 0, 0], 'none of them')
})
