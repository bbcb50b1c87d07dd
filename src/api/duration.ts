// Lease TTLs as Vault takes them: whole seconds, or a duration such as "90s", "15m", "1h30m", "24h".

import { invalid } from '../errors.js'

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }

/** Seconds for a number or a duration string; throws `invalid` naming `what` otherwise. */
export function parseDuration(value: unknown, what: string): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) return value
    throw invalid(`${what} must be a whole number of seconds`)
  }
  if (typeof value !== 'string') throw invalid(`${what} must be a number of seconds or a duration such as 1h`)
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text)
  if (!/^(\d+[smhd])+$/.test(text)) throw invalid(`${what} must be a number of seconds or a duration such as 1h30m`)
  let total = 0
  for (const [, n, unit] of text.matchAll(/(\d+)([smhd])/g)) total += Number(n) * UNITS[unit!]!
  if (!Number.isSafeInteger(total)) throw invalid(`${what} is too long`)
  return total
}
