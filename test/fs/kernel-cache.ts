// What the kernel caches of the low-level mount (src/fs/kernel-cache.ts): a stored secret read
// again comes from the page cache, its open answered without reading it from the store; every
// change, wherever it is made, is seen by the next stat or read; a secret replaced from elsewhere
// is what `mv new f` makes (a descriptor open on the old one keeps it); a seal leaves nothing of
// any secret in the kernel; a revoked lease's file is gone at once.
import fs from 'node:fs/promises'
import { constants } from 'node:os'
import path from 'node:path'
import t from 'tap'
import type { BackendFactory } from '../../src/backends/backend.js'
import { Core, builtinBackends } from '../../src/core/core.js'
import { startTestApi } from '../helpers/api-fixture.js'
import { captureLog } from '../helpers/capture-log.js'
import { countingBackend } from '../helpers/counting-backend.js'
import { mountInProcess, sh, testBinding } from '../helpers/daemon.js'
import { MemoryStorage } from '../../src/storage/memory-storage.js'
import { noSpace } from '../../src/errors.js'
import { MAX_STORED } from '../../src/fs/kernel-cache.js'

if (testBinding() !== 'lowlevel') {
  t.pass('the fuse-native binding caches no attributes or contents')
  process.exit(0)
}

const unlock = { kind: 'key-file', key: Buffer.alloc(32, 5) } as const
const log = captureLog()
const { factory } = countingBackend()
/** A backend whose one file changes by itself, as a rotation's time does: it must never be cached. */
let ticks = 0
const ticking: BackendFactory = () => ({
  stat: async (p) => (p === '' ? dir : p === 'tick' ? file() : undefined),
  read: async () => ({ value: Buffer.from(`tick ${++ticks}`), ...file() }),
  list: async () => ['tick'],
})
/**
 * A backend that stores what is written and reads it back in capitals, as a stored secret
 * (cacheable); its write does not say that a read gives back the value written.
 */
const shouted = new Map<string, string>()
const shouting: BackendFactory = () => ({
  stat: async (p) =>
    p === '' ? dir : shouted.has(p) ? { ...file(), size: shouted.get(p)!.length, cacheable: true } : undefined,
  read: async (p) => ({ value: Buffer.from(shouted.get(p)!.toUpperCase()), ...file(), cacheable: true }),
  list: async () => [...shouted.keys()],
  write: async (p, value) => void shouted.set(p, Buffer.from(value).toString()),
})
const dir = { kind: 'dir', size: 0, created: new Date(0), modified: new Date(0) } as const
const file = () => ({ kind: 'file', size: 64, created: new Date(0), modified: new Date(0) }) as const
const core = new Core({
  storage: new MemoryStorage(),
  log,
  // Room for a secret larger than the kernel gives back at once (MAX_STORED).
  maxValueSize: 2 * MAX_STORED,
  backends: { ...builtinBackends, counting: factory, ticking, shouting },
})
await core.initialize(unlock)
await core.unseal(unlock)
const api = await startTestApi(t, { core })
const { mountpoint: mnt } = await mountInProcess(t, core, log)
const root = (cmd: string) => sh(cmd, { cwd: mnt })
const octets = { 'Content-Type': 'application/octet-stream' }

async function apiWrite(p: string, value: string): Promise<void> {
  const r = await api.request('PUT', `/v1/${p}`, value, octets)
  if (r.status !== 204) throw new Error(`write ${p}: ${r.status} ${r.body}`)
}

/** Counts the core's reads of secrets while `work` runs. */
async function coreReads(work: () => Promise<unknown>): Promise<number> {
  const read = core.read.bind(core)
  let reads = 0
  core.read = (p: string) => {
    reads++
    return read(p)
  }
  try {
    await work()
  } finally {
    core.read = read
  }
  return reads
}

/**
 * A descriptor open on `file`, a secret read once already: one more read first (answered from the
 * kernel's cache, it hands the file's next opens to the addon), then the descriptor, which the
 * addon answers when the secret is cached and unchanged.
 */
async function openGranted(file: string): Promise<fs.FileHandle> {
  await fs.readFile(path.join(mnt, file))
  return fs.open(path.join(mnt, file), 'r')
}

/** What one descriptor open on `file` (see openGranted) reads from its start before `change` runs, and after. */
async function readAcross(file: string, change: () => Promise<unknown>): Promise<[string, string]> {
  const held = await openGranted(file)
  const read = async () => {
    const buf = Buffer.alloc(64)
    const { bytesRead } = await held.read(buf, 0, 64, 0)
    return buf.subarray(0, bytesRead).toString()
  }
  try {
    const before = await read()
    await change()
    return [before, await read()]
  } finally {
    await held.close()
  }
}

t.test('a secret read again comes from the page cache: its opens read nothing from the store', async (t) => {
  await apiWrite('secret/cached', 'the value')
  t.equal((await root('cat secret/cached')).stdout, 'the value', 'the first read fills the cache')
  const reads = await coreReads(async () => {
    for (let i = 0; i < 5; i++) t.equal((await root('cat secret/cached')).stdout, 'the value')
  })
  t.equal(reads, 0, 'five more cats, no read of the store')
})

t.test('content a backend changes by itself is read afresh at each open', async (t) => {
  t.equal((await root('mkdir ticking && cat ticking/tick')).stdout, 'tick 1')
  t.equal((await root('cat ticking/tick')).stdout, 'tick 2')
  t.equal((await root('cat ticking/tick')).stdout, 'tick 3')
})

t.test('written through the mount: the next read sees it, however the size changes', async (t) => {
  for (const value of ['one', 'a longer value', '', 'x', 'the last one']) {
    t.equal((await root('cat secret/w 2>/dev/null; cat secret/w 2>/dev/null; true')).code, 0, 'cached')
    const r = await root(`printf %s '${value}' > secret/w && stat -c %s secret/w && cat secret/w`)
    t.equal(r.stdout, `${value.length}\n${value}`)
  }
  t.equal((await root(`sed -i s/last/final/ secret/w && cat secret/w`)).stdout, 'the final one')
})

t.test('written through the mount: its content is put in the page cache, and no open reads it back', async (t) => {
  for (const value of ['fresh value', 'second']) {
    t.equal((await root(`printf '${value}' > secret/fresh`)).code, 0)
    // A close does not wait for the kernel to take the content; a read before that reads the store.
    await core.changesApplied()
    const reads = await coreReads(async () => {
      t.equal((await root(`cat secret/fresh && cat secret/fresh`)).stdout, value + value)
    })
    t.equal(reads, 0, 'two cats after the write: no read of the store')
  }
  // Shorter than what the kernel held: the stale tail must not be served.
  t.equal((await root(`printf 'x' > secret/fresh && cat secret/fresh && stat -c %s secret/fresh`)).stdout, 'x1\n')
})

t.test('a file created through the mount keeps its name in the kernel past the short timeout', async (t) => {
  t.equal((await root(`printf 'made here' > secret/created`)).code, 0)
  await core.changesApplied()
  t.equal((await root('stat -c %s secret/created')).stdout, '9\n', 'its attributes, as stored')
  // Longer than a name kept for CACHE_TIMEOUT; shorter than STABLE_CACHE_TIMEOUT.
  await new Promise((r) => setTimeout(r, 1_500))
  const stat = core.stat.bind(core)
  let stats = 0
  core.stat = (p: string) => (p === 'secret/created' && stats++, stat(p))
  try {
    t.equal((await root('stat -c %s secret/created')).stdout, '9\n')
  } finally {
    core.stat = stat
  }
  t.equal(stats, 0, 'a stat 1.5 s later: the kernel asked nothing of it (only of its mount)')
})

t.test('a created file whose first commit failed leaves no name in the kernel', async (t) => {
  const write = core.write.bind(core)
  core.write = async (p, value, source) => {
    if (p.startsWith('secret/refused')) throw noSpace()
    return write(p, value, source)
  }
  try {
    const written = await root(`printf 'never stored' | cat > secret/refused`)
    t.match(written.stderr, /No space left on device/, 'the close failed')
    // Created and closed without a write: its commit fails at the release, after the close.
    t.equal((await root(': > secret/refused-empty')).code, 0)
    await new Promise((r) => setTimeout(r, 300))
  } finally {
    core.write = write
  }
  t.equal((await root('test -e secret/refused')).code, 1, 'the name is gone at once')
  t.equal((await root('test -e secret/refused-empty')).code, 1, 'so is the one with attributes the kernel held')
  t.equal((await root('ls secret | grep -c refused')).stdout, '0\n')
  t.equal((await root(`printf 'now stored' > secret/refused && cat secret/refused`)).stdout, 'now stored')
})

t.test('a descriptor open across a write through the mount reads what was written', async (t) => {
  t.equal((await root(`printf 'before' > secret/held && cat secret/held`)).stdout, 'before')
  const [before, after] = await readAcross('secret/held', () => root(`printf 'after, and longer' > secret/held`))
  t.equal(before, 'before')
  t.equal(after, 'after, and longer', 'as on a local filesystem')
})

t.test('written content is cached only when the backend reads it back as written', async (t) => {
  t.equal((await root(`mkdir shouting && printf 'quiet' > shouting/s && cat shouting/s`)).stdout, 'QUIET')
  t.equal((await root(`cat shouting/s`)).stdout, 'QUIET', 'and again, from the page cache')
})

t.test('replaced through the API: the next stat and cat see it; an open descriptor keeps the old', async (t) => {
  await apiWrite('secret/r', 'old value')
  t.equal((await root('cat secret/r')).stdout, 'old value')
  const [before, after] = await readAcross('secret/r', async () => {
    await apiWrite('secret/r', 'new, longer value')
    t.equal((await root('stat -c %s secret/r && cat secret/r')).stdout, '17\nnew, longer value')
  })
  t.equal(before, 'old value')
  t.equal(after, 'old value', 'as after `mv new f`')
})

t.test(
  'replaced or deleted elsewhere, then evicted from the page cache: an open descriptor keeps the old',
  async (t) => {
    if (process.getuid?.() !== 0) return t.pass('skipped: dropping the page cache needs root')
    /** Evicts every clean page of every file, as memory pressure would. */
    const evict = async () => {
      await core.changesApplied()
      await fs.writeFile('/proc/sys/vm/drop_caches', '1')
    }
    const changes: [string, (file: string) => Promise<unknown>][] = [
      ['replaced through the API', (file) => apiWrite(`secret/${file}`, 'new, longer value')],
      ['deleted through the API', (file) => core.delete(`secret/${file}`)],
      ['removed through the mount', (file) => root(`rm secret/${file}`)],
    ]
    for (const [i, [what, change]] of changes.entries()) {
      const file = `evicted-${i}`
      await apiWrite(`secret/${file}`, 'old value')
      t.equal((await root(`cat secret/${file}`)).stdout, 'old value', 'cached')
      const reads = await coreReads(async () => {
        const [before, after] = await readAcross(`secret/${file}`, async () => {
          await change(file)
          await evict()
        })
        t.equal(before, 'old value', `${what}: read before`)
        t.equal(after, 'old value', `${what}: and after its pages were evicted`)
      })
      t.equal(reads, 0, `${what}: nothing read from the store`)
    }

    // Evicted before the change: nothing of it is left to keep, and a read says so.
    await apiWrite('secret/gone-first', 'old value')
    t.equal((await root('cat secret/gone-first')).stdout, 'old value')
    const held = await openGranted('secret/gone-first')
    try {
      await evict()
      await apiWrite('secret/gone-first', 'new value')
      await core.changesApplied()
      const failed = await held.read(Buffer.alloc(64), 0, 64, 0).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e,
      )
      t.equal(failed?.errno, -constants.errno.ESTALE, 'a read fails (ESTALE): never the new value, nor nothing')
    } finally {
      await held.close()
    }
  },
)

t.test('a secret too large to be taken back from the page cache: a descriptor keeps it all the same', async (t) => {
  if (process.getuid?.() !== 0) return t.pass('skipped: dropping the page cache needs root')
  const size = MAX_STORED + (MAX_STORED >> 1)
  await apiWrite('secret/large', 'o'.repeat(size))
  t.equal((await root('wc -c < secret/large')).stdout, `${size}\n`, 'read whole: the kernel caches it')
  // Its open reads the store: what the kernel holds of it could not be taken back once evicted.
  const reads = await coreReads(async () => {
    const held = await fs.open(path.join(mnt, 'secret/large'), 'r')
    try {
      await apiWrite('secret/large', 'new value')
      await core.changesApplied()
      await fs.writeFile('/proc/sys/vm/drop_caches', '1')
      const tail = Buffer.alloc(64)
      const { bytesRead } = await held.read(tail, 0, 64, size - 64)
      t.equal(tail.subarray(0, bytesRead).toString(), 'o'.repeat(64), 'its end, after eviction: the old value')
    } finally {
      await held.close()
    }
  })
  t.equal(reads, 1, 'read once, at the open')
  t.equal((await root('cat secret/large')).stdout, 'new value')
})

t.test('replaced or deleted: the old secret cannot be opened again through a descriptor held on it', async (t) => {
  const changes: [string, (file: string) => Promise<unknown>][] = [
    ['replaced through the API', (file) => apiWrite(`secret/${file}`, 'new value')],
    ['deleted through the API', (file) => core.delete(`secret/${file}`)],
    [
      'moved over through the API',
      (file) => apiWrite('secret/other', 'new value').then(() => core.rename('secret/other', `secret/${file}`)),
    ],
    [
      'moved over through the mount',
      (file) => root(`printf 'new value' > secret/other && mv secret/other secret/${file}`),
    ],
  ]
  for (const [i, [what, change]] of changes.entries()) {
    const file = `reopened-${i}`
    await apiWrite(`secret/${file}`, 'old value')
    t.equal((await root(`cat secret/${file}`)).stdout, 'old value')
    const held = await openGranted(`secret/${file}`)
    try {
      await change(file)
      await core.changesApplied()
      // /proc/self/fd/N opens the inode the descriptor holds, not the name: the old secret's.
      const again = await fs.readFile(`/proc/self/fd/${held.fd}`).then(
        (b) => b.toString(),
        (e: NodeJS.ErrnoException) => e.errno,
      )
      t.equal(again, -constants.errno.ESTALE, `${what}: not opened again (ESTALE)`)
      const buf = Buffer.alloc(64)
      const { bytesRead } = await held.read(buf, 0, 64, 0)
      t.equal(buf.subarray(0, bytesRead).toString(), 'old value', `${what}: the descriptor keeps what it opened`)
    } finally {
      await held.close()
    }
  }
})

t.test('deleted, moved or unmounted through the API: gone at once from the cached names', async (t) => {
  await apiWrite('secret/d/a', '1')
  await apiWrite('secret/d/b', '2')
  t.equal((await root('cat secret/d/a secret/d/b')).stdout, '12')
  await api.request('DELETE', '/v1/secret/d/a')
  t.match((await root('cat secret/d/a')).stderr, /No such file/)
  await core.rename('secret/d/b', 'secret/d/c')
  await core.changesApplied()
  t.match((await root('cat secret/d/b')).stderr, /No such file/)
  t.equal((await root('cat secret/d/c')).stdout, '2')
  await api.request('POST', '/v1/sys/mounts/other', '{"type":"generic"}', { 'Content-Type': 'application/json' })
  await apiWrite('other/k', 'v')
  t.equal((await root('cat other/k')).stdout, 'v')
  await api.request('DELETE', '/v1/sys/mounts/other')
  t.match((await root('stat other/k')).stderr, /No such file/)
  t.match((await root('stat other')).stderr, /No such file/)
})

t.test('a revoked lease is gone from sys/leases at once', async (t) => {
  t.equal((await root('mkdir counting && cat counting/creds > /dev/null')).code, 0)
  const id = (await root('cd sys/leases/counting/creds && ls')).stdout.trim()
  t.match(id, /^[0-9a-f-]{36}$/)
  const file = `sys/leases/counting/creds/${id}`
  t.equal((await root(`stat -c %F ${file}`)).stdout, 'regular file\n', 'its name is cached')
  const r = await api.request('PUT', `/v1/sys/leases/revoke/counting/creds/${id}`)
  t.equal(r.status, 204, r.body.toString())
  t.match((await root(`stat ${file}`)).stderr, /No such file/)
})

t.test('a seal leaves nothing in the kernel: names, attributes and cached content', async (t) => {
  await apiWrite('secret/sealed', 'kept in the page cache')
  t.equal((await root('cat secret/sealed')).stdout, 'kept in the page cache')
  // An open answered from the kernel's cache (by the addon, nothing read from the store).
  const held = await openGranted('secret/sealed')
  try {
    t.equal((await api.request('POST', '/v1/sys/seal')).status, 204)
    t.match((await root('stat secret/sealed')).stderr, /Permission denied/)
    await t.rejects(held.read(Buffer.alloc(64), 0, 64, 0), { code: 'EACCES' }, 'a descriptor opened before the seal')
    await core.unseal(unlock)
    await t.rejects(held.read(Buffer.alloc(64), 0, 64, 0), { code: 'EACCES' }, 'and after the unseal')
  } finally {
    await held.close()
  }
  t.equal((await root('cat secret/sealed')).stdout, 'kept in the page cache', 'unsealed, it reads again')
})
