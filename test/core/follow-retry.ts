// A daemon on a shared store that cannot take up another's change (the store unreachable that
// moment) says so and reads the whole store again a moment later, until it can: nothing another
// daemon did is lost, and every backend drops what it keeps in memory of its entries. Two cores
// share one in-memory store here; the store tells the first of the second's changes as a shared
// store would, and fails its reads while told to.
import t from 'tap'
import type { BackendFactory } from '../../src/backends/backend.js'
import { Core, builtinBackends } from '../../src/core/core.js'
import { GenericBackend } from '../../src/backends/generic-backend.js'
import { unavailable } from '../../src/errors.js'
import { MemoryStorage } from '../../src/storage/memory-storage.js'
import type { StorageChange } from '../../src/storage/storage.js'
import { captureLog } from '../helpers/capture-log.js'

class SharedMemoryStorage extends MemoryStorage {
  readonly #listeners = new Set<(change: StorageChange) => void>()
  /** Reads that fail next, as when the server is unreachable. */
  failingReads = 0

  override async get(key: string): Promise<Uint8Array | undefined> {
    if (this.failingReads > 0) {
      this.failingReads--
      throw unavailable('the store cannot be reached')
    }
    return super.get(key)
  }

  watch(listener: (change: StorageChange) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Tells every core of a change made by another. */
  tell(change: StorageChange): void {
    for (const listener of this.#listeners) listener(change)
  }
}

const unlock = { kind: 'key-file', key: Buffer.alloc(32, 9) } as const
/** What each recording mount heard of other daemons' changes to its entries. */
const heard: string[] = []
const recording: BackendFactory = (ctx) =>
  Object.assign(new GenericBackend(ctx), { changedElsewhere: (path: string) => void heard.push(path) })
const backends = { ...builtinBackends, recording }

t.test('a change that cannot be taken up is taken up with the whole store, a moment later', async (t) => {
  const storage = new SharedMemoryStorage()
  const log = captureLog()
  const a = new Core({ storage, log, backends })
  await a.initialize(unlock)
  await a.unseal(unlock)
  await a.mount('kept', 'recording')
  const b = new Core({ storage, log: captureLog(), backends })
  await b.unseal(unlock)
  t.teardown(() => {
    a.seal()
    b.seal()
  })

  await b.mount('team', 'generic')
  await b.write('team/db', Buffer.from('hunter2'))
  storage.failingReads = 2
  // As after a lost notice: everything may have changed.
  storage.tell({ all: true })
  const mounts = () =>
    a
      .mounts()
      .map((m) => m.path)
      .sort()
  t.same(mounts(), ['kept/', 'secret/', 'sys/'], 'not taken up while the store fails')
  t.same(heard, [])

  const deadline = Date.now() + 10_000
  while (!mounts().includes('team/') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.same(mounts(), ['kept/', 'secret/', 'sys/', 'team/'], 'taken up once the store answers')
  t.ok(heard.includes(''), 'the backends hear that any of their entries may have changed')
  t.equal(Buffer.from((await a.read('team/db')).value).toString(), 'hunter2')
  const warnings = log.lines.filter((l) => l.startsWith('[warn]'))
  t.ok(warnings.length >= 1, 'each failure is logged')
  t.match(warnings[0], /could not be taken up; the whole store is read again: unavailable/)
  t.notMatch(log.lines.join('\n'), /team|hunter2/, 'naming no mount, path or value')
})

t.test("a secret another daemon rewrote is stat'ed anew once its change is taken up", async (t) => {
  const storage = new SharedMemoryStorage()
  const a = new Core({ storage, log: captureLog() })
  await a.initialize(unlock)
  await a.unseal(unlock)
  const b = new Core({ storage, log: captureLog() })
  await b.unseal(unlock)
  t.teardown(() => {
    a.seal()
    b.seal()
  })
  await a.write('secret/s', Buffer.from('short'))
  t.equal((await a.stat('secret/s'))?.size, 5)
  await b.write('secret/s', Buffer.from('a longer value'))
  storage.tell({ all: true })
  await a.changesApplied()
  const deadline = Date.now() + 5_000
  while ((await a.stat('secret/s'))?.size !== 14 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.equal((await a.stat('secret/s'))?.size, 14)
})
