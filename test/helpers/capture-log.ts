// A Logger that keeps its lines, for tests that check what the daemon logs (and what it never does).
import { describe, type Logger } from '../../src/log.js'

export function captureLog(): Logger & { lines: string[] } {
  const lines: string[] = []
  const line = (level: string) => (m: string, e?: unknown) =>
    void lines.push(`[${level}] ${m}${e ? `: ${describe(e)}` : ''}`)
  return { lines, info: line('info'), warn: line('warn'), error: line('error') }
}
