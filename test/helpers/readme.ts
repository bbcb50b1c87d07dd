// Test helper for the README's tours: the code blocks of one section, each command of a block,
// and a home directory where `npx secretfs` runs this build, as it does in the clone the README's
// set-up makes.
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir, type Scope } from './daemon.js'

export const root = fileURLToPath(new URL('../../', import.meta.url))

/** The ```LANG blocks of the README between the headings `from` and `to`. */
export async function readmeBlocks(from: string, to: string, lang = 'sh'): Promise<string[]> {
  const readme = await fs.readFile(path.join(root, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf(from), readme.indexOf(to, readme.indexOf(from)))
  return [...section.matchAll(new RegExp('```' + lang + '\\n([^]*?)```', 'g'))].map((m) => m[1]!)
}

/**
 * Each command of a block, without its comment: a line ending in `\` goes on with the next, and
 * lines that are only a comment are skipped.
 */
export const commands = (block: string) =>
  block
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'))

/** A home with a work directory whose `npx secretfs` is this build; and an environment for it. */
export async function tourHome(t: Scope, prefix: string) {
  const home = await tempDir(t, prefix)
  const work = path.join(home, 'work')
  await fs.mkdir(path.join(work, 'node_modules', '.bin'), { recursive: true })
  await fs.symlink(
    path.join(root, 'dist', 'src', 'cli', 'main.js'),
    path.join(work, 'node_modules', '.bin', 'secretfs'),
  )
  const env = {
    HOME: home,
    XDG_RUNTIME_DIR: '',
    XDG_DATA_HOME: '',
    SECRETFS_ADDR: '',
    // npm may print a notice of a newer npm on stderr, which would hide anything else there.
    NPM_CONFIG_UPDATE_NOTIFIER: 'false',
  }
  return { home, work, env }
}
