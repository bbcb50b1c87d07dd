// The CLI against a real daemon with a real mount: the seed walkthrough, the CLI and the shell
// seeing each other's writes at once, seal and unseal, and a restart keeping everything.
import fs from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { defaultSocketPath } from '../../src/api/socket-path.js'
import { runCli } from '../helpers/cli-run.js'
import { sh, startDaemon, tempDir, type Scope } from '../helpers/daemon.js'

/** A home of its own, so that the default socket is private to the test and found without SECRETFS_ADDR. */
async function isolatedEnv(t: Scope): Promise<NodeJS.ProcessEnv> {
  const home = await tempDir(t, 'sfs-e2e-')
  const run = path.join(home, 'run')
  await fs.mkdir(run, { mode: 0o700 })
  return { HOME: home, XDG_RUNTIME_DIR: run, XDG_DATA_HOME: '', SECRETFS_ADDR: '' }
}

async function waitForSocket(env: NodeJS.ProcessEnv): Promise<string> {
  const sock = defaultSocketPath(env)
  for (let i = 0; i < 100; i++) {
    if ((await fs.lstat(sock).catch(() => undefined))?.isSocket()) return sock
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`the daemon did not listen on ${sock}`)
}

t.test('the seed walkthrough against the dev server, found without SECRETFS_ADDR', async (t) => {
  const env = await isolatedEnv(t)
  const daemon = await startDaemon(t, { args: ['--dev'], env })
  await waitForSocket(env)
  const mnt = daemon.mountpoint
  const cli = (args: string[], input?: string) => runCli(args, { env, ...(input !== undefined && { input }) })

  t.equal((await cli(['mount', 'generic'])).stdout, "Successfully mounted 'generic' at 'generic'!\n")
  t.equal(
    (await cli(['mounts'])).stdout,
    'Path      Type     Description\ngeneric/  generic\nsecret/   generic  generic secret storage\nsys/      system   system endpoints used for control, policy and debugging\n',
  )
  t.equal((await sh(`ls ${mnt}`)).stdout, 'generic\nsecret\nsys\n', 'the new mount is a directory at once')
  t.equal((await cli(['write', 'secret/hello', 'value=world'])).code, 0)
  t.equal((await cli(['write', 'generic/other', 'value=mine'])).code, 0)
  t.equal((await sh(`cat ${mnt}/secret/hello`)).stdout, '{"value":"world"}\n', 'a CLI write is seen by cat at once')
  t.equal((await sh(`ls ${mnt}/secret`)).stdout, 'hello\n', 'secret/ holds only its own data')
  t.equal((await sh(`ls ${mnt}/generic`)).stdout, 'other\n', 'generic/ holds only its own data')
  t.match((await cli(['read', 'generic/hello'])).stderr, /No value found at generic\/hello/)

  t.equal((await sh(`printf 'from the shell' > ${mnt}/secret/shell`)).code, 0)
  t.equal(
    (await cli(['read', 'secret/shell', '--field', 'value'])).stdout,
    'from the shell',
    'a shell write is seen by secretfs read at once',
  )
  t.equal((await sh(`printf '{"a":"b"}' > ${mnt}/secret/obj`)).code, 0)
  t.equal((await cli(['read', 'secret/obj', '--field', 'a'])).stdout, 'b')

  t.equal((await cli(['remount', 'generic', 'moved'])).stdout, "Successfully remounted 'generic' to 'moved'!\n")
  t.equal((await sh(`cat ${mnt}/moved/other`)).stdout, '{"value":"mine"}\n', 'remount keeps the data')
  t.equal((await cli(['unmount', 'moved/'])).stdout, "Successfully unmounted 'moved/'!\n")
  t.equal((await sh(`ls ${mnt}`)).stdout, 'secret\nsys\n')
  t.equal((await cli(['mount', 'generic', '--path', 'moved'])).code, 0)
  t.equal((await sh(`ls ${mnt}/moved`)).stdout, '', 'unmount deleted the data')
})

t.test('seal and unseal; the same store restarted keeps everything', async (t) => {
  const env = await isolatedEnv(t)
  const data = path.join(env.HOME!, 'data')
  const key = path.join(env.HOME!, 'key')
  const cli = (args: string[]) => runCli(args, { env })
  t.equal((await cli(['init', '--data', data, '--key-file', key])).code, 0)
  const args = ['--data', data, '--key-file', key]
  const first = await startDaemon(t, { args, env })
  await waitForSocket(env)
  const mnt = first.mountpoint
  t.equal((await cli(['write', 'secret/kept', 'value=across restarts'])).code, 0)
  t.equal((await cli(['mount', 'generic'])).code, 0)

  t.equal((await cli(['seal'])).code, 0)
  const refused = await sh(`cat ${mnt}/secret/kept`)
  t.same([refused.code, refused.stdout], [1, ''], 'the mount refuses while sealed')
  t.match(refused.stderr, /secret\/kept: Permission denied/)
  const sealed = await cli(['read', 'secret/kept'])
  t.equal(sealed.code, 1)
  t.match(sealed.stderr, /secretfs is sealed\.\nUnseal it with `secretfs unseal`/)
  t.match((await cli(['status'])).stdout, /^Sealed\s+true$/m)
  t.equal((await cli(['unseal', '--key-file', key])).code, 0)
  t.equal((await sh(`cat ${mnt}/secret/kept`)).stdout, '{"value":"across restarts"}\n', 'unseal brings the mount back')
  t.equal((await cli(['read', 'secret/kept', '--field', 'value'])).stdout, 'across restarts')

  t.same(await first.stop(), { code: 0, signal: null })
  const daemonGone = await cli(['read', 'secret/kept'])
  t.equal(daemonGone.code, 1)
  t.match(daemonGone.stderr, /no secretfs daemon is running/)
  const second = await startDaemon(t, { args, env })
  await waitForSocket(env)
  t.equal((await cli(['read', 'secret/kept', '--field', 'value'])).stdout, 'across restarts')
  t.match((await cli(['mounts'])).stdout, /^generic\/\s+generic$/m)
  t.equal((await sh(`cat ${second.mountpoint}/secret/kept`)).stdout, '{"value":"across restarts"}\n')
})

t.test('SECRETFS_DATA and SECRETFS_MOUNTPOINT alone: init, the server and the CLI agree on them', async (t) => {
  const home = await tempDir(t, 'sfs-env-')
  const data = path.join(home, 'data')
  const mnt = path.join(home, 'mnt')
  const key = path.join(home, 'key')
  // No XDG_RUNTIME_DIR: the socket goes in the data directory, where the CLI then looks for it.
  const env = {
    HOME: home,
    XDG_RUNTIME_DIR: '',
    XDG_DATA_HOME: '',
    SECRETFS_ADDR: '',
    SECRETFS_DATA: data,
    SECRETFS_MOUNTPOINT: mnt,
  }
  const init = await runCli(['init', '--key-file', key], { env })
  t.same([init.code, init.stderr], [0, ''])
  t.match(init.stdout, `Success! Created a store in ${data}.\n`)
  t.ok((await fs.stat(path.join(data, 'secretfs.db'))).isFile(), 'the store is in $SECRETFS_DATA')

  const d = await startDaemon(t, { args: ['--key-file', key], mountpoint: false, env })
  t.match(d.stdout(), `mounted at ${mnt}\n`)
  t.match(d.stdout(), `control API listening on ${path.join(data, 'secretfs.sock')}\n`)
  const w = await runCli(['write', 'secret/e', 'value=found'], { env })
  t.same([w.code, w.stdout, w.stderr], [0, 'Success! Data written to: secret/e\n', ''], 'the CLI finds the daemon')
  t.equal((await sh(`cat ${mnt}/secret/e`)).stdout, '{"value":"found"}\n', 'mounted at $SECRETFS_MOUNTPOINT')
  t.same(await d.stop(), { code: 0, signal: null })
})
