// Random text for names and passwords that secretfs makes (IAM users, database roles): letters
// and digits only, so that it is safe inside a quoted SQL literal or identifier, a URL and a shell
// word, and drawn without bias from libsodium's generator.

import sodium from 'sodium-native'

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'

/** `n` random letters and digits, uniformly: bytes past the last whole multiple of 62 are drawn again. */
export function randomAlnum(n: number): string {
  let out = ''
  const buf = Buffer.alloc(n * 2)
  while (out.length < n) {
    sodium.randombytes_buf(buf)
    for (const b of buf) if (b < 248 && out.length < n) out += ALNUM[b % 62]
  }
  buf.fill(0)
  return out
}
