// Asks for a secret at the terminal without echoing it, as bytes that can be wiped.

import { UsageError } from './cli-error.js'

/** Reads one line from the terminal on stdin, not echoed. Throws when stdin is not a terminal. */
export async function promptHidden(question: string): Promise<Buffer> {
  const input = process.stdin
  if (!input.isTTY)
    throw new UsageError(
      'there is no terminal to ask for the passphrase',
      'Give it with --passphrase-file FILE, or use a key with --key-file FILE.',
    )
  process.stderr.write(question)
  input.setRawMode(true)
  input.resume()
  const bytes: number[] = []
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        for (const b of chunk) {
          if (b === 0x0d || b === 0x0a) {
            input.off('data', onData)
            resolve(Buffer.from(bytes))
            return
          }
          if (b === 0x03 || (b === 0x04 && bytes.length === 0)) {
            input.off('data', onData)
            reject(new UsageError('cancelled'))
            return
          }
          if (b === 0x7f || b === 0x08) {
            // Backspace removes a whole UTF-8 character: continuation bytes are 10xxxxxx.
            while (bytes.length && (bytes.pop()! & 0xc0) === 0x80);
          } else if (b === 0x15)
            bytes.length = 0 // Ctrl-U clears the line
          else bytes.push(b)
        }
      }
      input.on('data', onData)
    })
  } finally {
    bytes.fill(0)
    input.setRawMode(false)
    input.pause()
    process.stderr.write('\n')
  }
}
