// Asks for a secret at the terminal without echoing it, gathered in secure memory.

import { UsageError } from './cli-error.js'
import { SecureBytes, wipe } from './secure-bytes.js'

/**
 * Reads one line from the terminal on stdin, not echoed, into secure memory. Throws when stdin is
 * not a terminal.
 */
export async function promptHidden(question: string): Promise<Buffer> {
  const input = process.stdin
  if (!input.isTTY)
    throw new UsageError(
      'there is no terminal to ask for the passphrase',
      'Give it with --passphrase-file FILE, or use a key with --key-file FILE.',
    )
  // Raw mode first: whatever is typed once the question shows is neither echoed nor edited by
  // the terminal.
  input.setRawMode(true)
  process.stderr.write(question)
  input.resume()
  const typed = new SecureBytes()
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        try {
          for (const b of chunk) {
            if (b === 0x0d || b === 0x0a) {
              input.off('data', onData)
              resolve(typed.take())
              return
            }
            if (b === 0x03 || (b === 0x04 && typed.length === 0)) {
              input.off('data', onData)
              reject(new UsageError('cancelled'))
              return
            }
            if (b === 0x7f || b === 0x08) {
              // Backspace removes a whole UTF-8 character: continuation bytes are 10xxxxxx.
              let end = typed.length
              while (end > 0 && (typed.at(--end) & 0xc0) === 0x80);
              typed.truncate(end)
            } else if (b === 0x15)
              typed.truncate(0) // Ctrl-U clears the line
            else typed.push(b)
          }
        } finally {
          wipe(chunk)
        }
      }
      input.on('data', onData)
    })
  } finally {
    typed.wipe()
    input.setRawMode(false)
    input.pause()
    process.stderr.write('\n')
  }
}
