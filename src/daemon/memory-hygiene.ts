// What the daemon does so that a seal leaves no plaintext behind in memory it no longer uses.
// Buffers the code controls are zeroed where they are used; what the JavaScript heap keeps of
// strings (a secret's JSON fields, a value presented as text) is dead once a request is answered,
// but stays in freed memory until reused. At a seal the heap is collected with V8's
// clear-free-memory on, which zeroes the memory that collection frees.

import v8 from 'node:v8'
import vm from 'node:vm'

let collect: (() => void) | undefined

/** Turns on zeroing of freed heap memory, and makes a full collection available. */
export function enableMemoryHygiene(): void {
  if (collect) return
  v8.setFlagsFromString('--clear-free-memory')
  v8.setFlagsFromString('--expose-gc')
  collect = vm.runInNewContext('gc') as () => void
}

/** Collects the whole heap, twice: the first frees what the young generation held. */
export function collectGarbage(): void {
  collect?.()
  collect?.()
}
