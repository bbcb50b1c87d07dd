// Benchmark of the filesystem, side by side in one run with gocryptfs and tmpfs on the same
// workload: 1,000 secrets of 64 bytes written durably (create, write, fsync, close) and read twice
// (open, read, close: first just after writing, then again, when a filesystem that keeps the page
// cache serves it from there; secretfs's own binding and the floor put what was written in the
// page cache at its commit, so their first read comes from there too), and `ls -l` of a directory
// of 10,000 secrets, cold (the names have left the kernel's cache) and at once again. secretfs
// runs on its durable SQLite store, on its own low-level binding and on fuse-native (--fuse
// fuse-native), each with a store of its own. A fifth column, "floor", is secretfs's binding
// serving files from a Map (scripts/fuse-floor.ts), speaking to the kernel as secretfs does: the
// most any filesystem on this binding can do here.
// Every target fsyncs before close, so secretfs (durable at close anyway) and gocryptfs are
// compared on the same terms (on tmpfs and the floor, fsync costs nothing).
// The machine is shared and its speed drifts, so rounds alternate between the targets, each
// figure is the median of the rounds, and each ratio the median of the rounds' ratios (the two
// figures of a round were taken moments apart; medians taken apart can come from rounds a drift
// apart). (Finer interleaving, blocks of 50 operations, was tried: it measures how each filesystem
// wakes up from idle rather than its speed, and halves both fuse-native filesystems.)
// Needs root (for the tmpfs mount and the floor's mount), gocryptfs, fusermount.
// Run it twice, unpinned and pinned (client and servers on one CPU; on this VM a request that
// crosses CPUs costs ~35 µs of wake-up); the first line says which this run is:
//   npm run build && node dist/scripts/bench-fs.js [--rounds 9]
//   taskset -c 0 node dist/scripts/bench-fs.js [--rounds 9]
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { durableWrites, reads } from './lib/fs-rounds.js'
import { STABLE_CACHE_TIMEOUT } from '../src/fs/kernel-cache.js'
import { printAffinity } from './lib/affinity.js'

const SECRETS = 1_000
const LISTED = 10_000
const VALUE = Buffer.alloc(64, 'v')
const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 9
/** How long a name stays in the kernel's cache: the floor's and gocryptfs's entry timeout, 1 s. */
const NAME_CACHE_MS = 1_000
/**
 * The same for secretfs: a stored secret's name is kept STABLE_CACHE_TIMEOUT on its own binding
 * (every change to it is invalidated), 5 s on fuse-native. Waiting out the longer is cold on either.
 */
const SECRETFS_NAME_CACHE_MS = Math.max(STABLE_CACHE_TIMEOUT * 1000, 5_000)

const here = path.dirname(fileURLToPath(import.meta.url))
const fromSource = import.meta.url.endsWith('.ts')
const repo = fromSource ? path.resolve(here, '..') : path.resolve(here, '../..')

interface Target {
  name: string
  dir: string
  stop(): Promise<void>
  /** How long the kernel keeps the target's names (ms). */
  nameCache: number
  /** When `ls -l` of the listed directory last finished (performance.now()). */
  listed?: number
}

const now = () => process.hrtime.bigint()
const seconds = (start: bigint) => Number(now() - start) / 1e9

/**
 * Runs one of this repository's programs (`entry`, as 'src/cli/main', from the source or the
 * build) as a target: ready when it prints `ready`, stopped with SIGTERM.
 */
async function startProcess(
  name: string,
  dir: string,
  entry: string,
  args: string[],
  ready: RegExp,
  nameCache: number,
): Promise<Target> {
  const program = fromSource
    ? [
        `--import=${path.join(repo, 'node_modules/@tapjs/typescript/dist/esm/import.mjs')}`,
        path.join(repo, `${entry}.ts`),
      ]
    : [path.join(repo, 'dist', `${entry}.js`)]
  const child = spawn(process.execPath, [...program, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
  })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (ready.test(out)) resolve()
    })
    child.on('exit', (code) => reject(new Error(`${name} exited (${code})`)))
  })
  return {
    name,
    dir,
    nameCache,
    stop: () =>
      new Promise((resolve) => {
        child.on('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

function startSecretfs(work: string, binding: 'lowlevel' | 'fuse-native'): Promise<Target> {
  const name = binding === 'lowlevel' ? 'secretfs' : 'secretfs-fn'
  const data = path.join(work, `${name}-data`)
  const key = path.join(work, 'key')
  const mnt = path.join(work, name)
  fs.writeFileSync(key, Buffer.alloc(32, 7), { mode: 0o600 })
  const socket = path.join(work, `${name}.sock`)
  const args = [
    'server',
    '--mountpoint',
    mnt,
    '--data',
    data,
    '--key-file',
    key,
    '--address',
    socket,
    '--fuse',
    binding,
  ]
  return startProcess(name, path.join(mnt, 'secret'), 'src/cli/main', args, /stop it with/, SECRETFS_NAME_CACHE_MS)
}

function startFloor(work: string): Promise<Target> {
  const mnt = path.join(work, 'floor')
  fs.mkdirSync(mnt)
  return startProcess('floor', mnt, 'scripts/fuse-floor', [mnt], /mounted/, NAME_CACHE_MS)
}

async function startGocryptfs(work: string): Promise<Target> {
  const cipher = path.join(work, 'gocryptfs-cipher')
  const mnt = path.join(work, 'gocryptfs')
  fs.mkdirSync(cipher)
  fs.mkdirSync(mnt)
  execFileSync('gocryptfs', ['-init', '-q', '-extpass', 'echo pw', cipher], { stdio: 'ignore' })
  execFileSync('gocryptfs', ['-q', '-extpass', 'echo pw', cipher, mnt], { stdio: 'ignore' })
  return {
    name: 'gocryptfs',
    dir: mnt,
    nameCache: NAME_CACHE_MS,
    stop: async () => void execFileSync('fusermount', ['-u', mnt]),
  }
}

async function startTmpfs(work: string): Promise<Target> {
  const mnt = path.join(work, 'tmpfs')
  fs.mkdirSync(mnt)
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m,mode=0700', 'tmpfs', mnt])
  return { name: 'tmpfs', dir: mnt, nameCache: 0, stop: async () => void execFileSync('umount', [mnt]) }
}

async function fill(dir: string): Promise<void> {
  fs.mkdirSync(dir)
  for (let i = 0; i < LISTED; i += 100)
    await Promise.all(Array.from({ length: 100 }, (_, j) => fs.promises.writeFile(path.join(dir, `s${i + j}`), VALUE)))
}

function listing(t: Target): number {
  const start = now()
  const r = spawnSync('ls', ['-l', path.join(t.dir, 'listed')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  })
  const elapsed = seconds(start)
  t.listed = performance.now()
  if (r.status !== 0 || r.stdout.toString().split('\n').length < LISTED) throw new Error('ls -l failed')
  return elapsed
}

/** Waits until the names the last `ls -l` of `t` looked up have left the kernel's cache. */
async function namesExpired(t: Target): Promise<void> {
  const left = (t.listed ?? 0) + t.nameCache + 200 - performance.now()
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left))
}

/** The median (of an even count, the mean of the middle two). */
function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: tmpfs and the floor are mounted with mount(2)')
  printAffinity()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'secretfs-bench-'))
  const targets: Target[] = []
  try {
    // One at a time, so that those started are stopped if a later one fails.
    targets.push(await startSecretfs(work, 'lowlevel'))
    targets.push(await startSecretfs(work, 'fuse-native'))
    targets.push(await startGocryptfs(work))
    targets.push(await startTmpfs(work))
    targets.push(await startFloor(work))
    type Figures = { write: number; read: number; reread: number; ls: number; again: number }
    const results = new Map<string, { [K in keyof Figures]: number[] }>()
    for (const t of targets) {
      results.set(t.name, { write: [], read: [], reread: [], ls: [], again: [] })
      await fill(path.join(t.dir, 'listed'))
      listing(t) // warm-up
    }
    // Rounds interleave the targets, so that a slow moment of the machine hits all of them, and
    // each round starts one target further on, so that none always follows the same one (what one
    // leaves behind, as the host's disk catching up, would otherwise always fall on the next).
    for (let round = 0; round < rounds; round++)
      for (const t of [...targets.slice(round % targets.length), ...targets.slice(0, round % targets.length)]) {
        const r = results.get(t.name)!
        const dir = path.join(t.dir, `round${round}`)
        // What the targets left unsynced (the fill's files, the access times gocryptfs's reads update)
        // goes to disk first: otherwise the first fsync timed after it waits for it, whoever's it is.
        execFileSync('sync')
        r.write.push(durableWrites(dir, SECRETS, VALUE))
        r.read.push(reads(dir, SECRETS, VALUE.length))
        r.reread.push(reads(dir, SECRETS, VALUE.length))
        // Cold: the names have left the kernel's cache since the last ls of this target (a round
        // usually takes longer than that; the wait is a safeguard). Then again at once, warm.
        await namesExpired(t)
        r.ls.push(listing(t))
        r.again.push(listing(t))
      }
    type Key = keyof Figures
    const m = (name: string, key: Key) => median(results.get(name)![key])
    /** `a` against `b` round by round (each round's pair ran moments apart), the median of those. */
    const byRound = (a: string, b: string, key: Key) => {
      const bs = results.get(b)![key]
      return results.get(a)![key].map((x, i) => x / bs[i]!)
    }
    const ratio = (a: string, b: string, key: Key) => median(byRound(a, b, key))
    const names = ['secretfs', 'secretfs-fn', 'gocryptfs', 'tmpfs', 'floor']
    const col = (x: string) => x.padStart(11)
    console.log(
      `median of ${rounds} rounds; ${SECRETS} secrets of ${VALUE.length} bytes; ls -l of ${LISTED}; ` +
        "ratios are medians of the rounds' ratios",
    )
    console.log(
      ''.padEnd(44) +
        ['secretfs', 'f-native', 'gocryptfs', 'tmpfs', 'floor', 'vs gocrypt', 'f-nat vs g', 'floor vs g', 'vs f-nat']
          .map(col)
          .join('') +
        '  target (secretfs vs gocryptfs)',
    )
    const verdict = (ratio: number, target: number, higher: boolean) =>
      `${higher ? '>=' : '<='} ${target.toFixed(1)}x ${(higher ? ratio >= target : ratio <= target) ? 'met' : 'MISSED'}`
    const row = (what: string, key: Key, digits: number, target: number, higher: boolean) =>
      console.log(
        what.padEnd(44) +
          names.map((n) => col(m(n, key).toFixed(digits))).join('') +
          [
            ratio('secretfs', 'gocryptfs', key),
            ratio('secretfs-fn', 'gocryptfs', key),
            ratio('floor', 'gocryptfs', key),
            ratio('secretfs', 'secretfs-fn', key),
          ]
            .map((x) => col(`${x.toFixed(2)}x`))
            .join('') +
          `  ${verdict(ratio('secretfs', 'gocryptfs', key), target, higher)}`,
      )
    row('durable write (create, write, fsync, close) /s', 'write', 0, 1.0, true)
    row('read (open, read, close) /s', 'read', 0, 1.5, true)
    row('read again, from the page cache /s', 'reread', 0, 5.0, true)
    row(`ls -l of ${LISTED}, cold (s)`, 'ls', 3, 0.6, false)
    row('  the same, at once again, warm (s)', 'again', 3, 1.0, false)
    const onRead = ratio('secretfs', 'secretfs-fn', 'read')
    console.log(`secretfs vs fuse-native on read: ${onRead.toFixed(2)}x, ${verdict(onRead, 2, true)}`)
    const perRound = byRound('secretfs', 'gocryptfs', 'write').map((x) => x.toFixed(2))
    console.log(`durable write, secretfs vs gocryptfs, round by round: ${perRound.join(' ')}`)
  } finally {
    for (const t of targets.reverse()) await t.stop().catch((e: unknown) => console.error(`stopping ${t.name}:`, e))
    fs.rmSync(work, { recursive: true, force: true })
  }
}

await main()
