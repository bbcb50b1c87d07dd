// Passphrases typed at a terminal: `script` gives the CLI a real pseudo-terminal.
import t from 'tap'
import fs from 'node:fs/promises'
import path from 'node:path'
import { cliCommand, sh, startDaemon, tempDir } from '../helpers/daemon.js'
import { runCli } from '../helpers/cli-run.js'

const cli = cliCommand()
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
const cliLine = (args: string[]) => [cli.file, ...cli.args, ...args].map(quote).join(' ')

/** Runs the CLI on a terminal, typing each line once its prompt has appeared. */
function atTerminal(args: string[], lines: string[], env: NodeJS.ProcessEnv = {}) {
  const typing = lines.map((l) => `sleep 1.5; printf '%s\\n' ${quote(l)}`).join('; ')
  return sh(`(${typing}; sleep 3) | script -qec ${quote(cliLine(args))} /dev/null`, {
    env: { ...cli.env, ...env },
    timeoutMs: 60_000,
  })
}

t.test('init asks twice; different answers create nothing', async (t) => {
  const dir = await tempDir(t)
  const differ = await atTerminal(['init', '--data', path.join(dir, 'a')], ['one passphrase', 'another'])
  t.match(differ.stdout, /the two passphrases differ; nothing was created/)
  await t.rejects(fs.stat(path.join(dir, 'a', 'secretfs.db')), 'no store')
  const same = await atTerminal(['init', '--data', path.join(dir, 'b')], ['correct horse', 'correct horse'])
  t.match(same.stdout, /New passphrase: [^]*Repeat the passphrase: [^]*Success! Created a store/)
  t.notMatch(same.stdout, /correct horse/, 'the passphrase is not echoed')
})

t.test('unseal asks for the passphrase', async (t) => {
  const dir = await tempDir(t)
  const data = path.join(dir, 'data')
  await fs.writeFile(path.join(dir, 'pass'), 'correct horse\n')
  t.equal((await runCli(['init', '--data', data, '--passphrase-file', path.join(dir, 'pass')])).code, 0)
  const d = await startDaemon(t, { args: ['--data', data, '--sealed'], mountpoint: false })
  const env = { SECRETFS_ADDR: d.socketPath }
  const wrong = await atTerminal(['unseal'], ['wrong horse'], env)
  t.match(wrong.stdout, /Passphrase: [^]*wrong passphrase/)
  const right = await atTerminal(['unseal'], ['correct horse'], env)
  t.match(right.stdout, /Sealed +false/)
})
