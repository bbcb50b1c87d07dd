// Test helper: keeps a reference to every buffer of libsodium's secure memory allocated while it
// watches, so that a test can see what a key's memory holds after the key was dropped (zeroing
// leaves the memory allocated; the references keep it from being freed).
import sodium from 'sodium-native'
import type { Scope } from './daemon.js'

export function watchSecureMemory(t: Scope): { allocated: Buffer[]; notZeroed(): Buffer[] } {
  const allocated: Buffer[] = []
  const malloc = sodium.sodium_malloc
  sodium.sodium_malloc = (size: number) => {
    const buf = malloc(size)
    allocated.push(buf)
    return buf
  }
  t.teardown(() => void (sodium.sodium_malloc = malloc))
  return { allocated, notZeroed: () => allocated.filter((b) => b.some((byte) => byte !== 0)) }
}
