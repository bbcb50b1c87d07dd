// What the control API waits for before it answers a change: the attributes the kernel may still
// hold of the paths it changed (those, the directories above, and for a mount all beneath).
import t from 'tap'
import { ATTRIBUTE_TTL_MS, KernelCache } from '../../src/fs/kernel-cache.js'

/** Whether `p` settles without a timer: only microtasks run before setImmediate. */
async function settlesAtOnce(p: Promise<void>): Promise<boolean> {
  let settled = false
  void p.then(() => (settled = true))
  await new Promise((resolve) => setImmediate(resolve))
  return settled
}

/** How long `p` took, in ms. */
async function took(p: Promise<void>): Promise<number> {
  const start = performance.now()
  await p
  return performance.now() - start
}

const answer = (cache: KernelCache, path: string) => cache.attributes(path, async () => ({}))

t.test('paths the mount has not answered for wait for nothing', async (t) => {
  const cache = new KernelCache()
  await answer(cache, 'secret/a')
  t.ok(await settlesAtOnce(cache.lapsedFor('secret/b')), 'a sibling')
  t.ok(await settlesAtOnce(cache.lapsedFor('other/a')), 'another mount')
  t.ok(await settlesAtOnce(cache.lapsedUnder('other')), 'another mount, whole')
  t.ok(await settlesAtOnce(new KernelCache().lapsedAll()), 'nothing answered at all')
})

t.test('a path answered lately, or a directory above it, waits out twice the kernel timeout', async (t) => {
  const cache = new KernelCache()
  await answer(cache, 'secret/dir')
  t.ok((await took(cache.lapsedFor('secret/dir'))) >= 2 * ATTRIBUTE_TTL_MS - 1, 'the path')
  await answer(cache, 'secret/dir')
  t.ok((await took(cache.lapsedFor('secret/dir/file'))) >= 2 * ATTRIBUTE_TTL_MS - 1, 'beneath it')
  t.ok(await settlesAtOnce(cache.lapsedFor('secret/dir')), 'and then no more')
})

t.test('a mount waits for everything beneath it; sealing for everything', async (t) => {
  const cache = new KernelCache()
  await answer(cache, 'secret/a/b/c')
  t.ok(await settlesAtOnce(cache.lapsedFor('secret')), 'a file deep inside does not hold the mount itself')
  const cache2 = new KernelCache()
  await answer(cache2, 'secret/a/b/c')
  t.ok((await took(cache2.lapsedUnder('secret'))) >= 2 * ATTRIBUTE_TTL_MS - 1, 'the mount')
  await answer(cache2, 'other/x')
  t.ok((await took(cache2.lapsedAll())) >= 2 * ATTRIBUTE_TTL_MS - 1, 'all')
})

t.test('an answer in flight when the change was made is waited for, then its lifetime', async (t) => {
  const cache = new KernelCache()
  let finish!: () => void
  const slow = cache.attributes('secret/a', () => new Promise<void>((resolve) => (finish = resolve)))
  const lapsed = cache.lapsedFor('secret/unrelated')
  t.notOk(await settlesAtOnce(lapsed), 'waits while an answer is in flight')
  finish()
  await slow
  await lapsed
  t.ok((await took(cache.lapsedFor('secret/a'))) >= 2 * ATTRIBUTE_TTL_MS - 5, 'then counts from its answer')
})

t.test('old answers are forgotten: the tables hold at most two lifetimes', async (t) => {
  // The test sets the clock, so each answer is exactly as old as it says however busy the machine.
  let now = 1000
  const realNow = performance.now
  performance.now = () => now
  t.teardown(() => void (performance.now = realNow))
  const cache = new KernelCache()
  await answer(cache, 'secret/old')
  now += 4 * ATTRIBUTE_TTL_MS + 20
  await answer(cache, 'secret/new')
  t.equal(cache.size, 1, 'an answer more than two lifetimes old is dropped')
  now += 2 * ATTRIBUTE_TTL_MS + 20
  await answer(cache, 'secret/newer')
  t.equal(cache.size, 2, 'one a lifetime old is kept')
  t.ok(await settlesAtOnce(cache.lapsedFor('secret/old')), 'an old answer holds nothing up')
  t.ok(await settlesAtOnce(cache.lapsedFor('secret/new')), 'nor does one a lifetime old')
  t.notOk(await settlesAtOnce(cache.lapsedFor('secret/newer')), 'a new one does')
})
