// PostgreSQL's reason for a failure of node-postgres, in words fit for an error message: the
// server's message and SQLSTATE, or what a network failure means, with every hidden word (a
// password, a generated user name) replaced. Shared by the PostgreSQL store and the database backend.

import pg from 'pg'

/** Words to keep out of a message: the passwords and generated names the call involved. */
export type Hidden = readonly string[]

/** PostgreSQL's reason for `e`, with every hidden word replaced. */
export function reason(e: unknown, hide: Hidden): string {
  let text: string
  if (e instanceof pg.DatabaseError) {
    text = e.message
    if (e.code) text += ` (SQLSTATE ${e.code})`
  } else if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ECONNREFUSED') text = 'connection refused: is the server running, at that host and port?'
    else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') text = 'the host name does not resolve'
    else if (code === 'ENOENT') text = 'no server socket at that path'
    else if (/timeout/i.test(e.message)) text = `timed out (${e.message})`
    else text = e.message
  } else text = 'an unknown error'
  for (const word of hide) if (word.length > 0) text = text.replaceAll(word, '<hidden>')
  return text.length > 500 ? text.slice(0, 500) + '…' : text
}
