// Parses a request's target ('/v1/secret/team/db?list=true') into checked path components. The
// raw target is split and decoded here, never normalised: '..' or '.' in a path, a NUL byte, an
// empty component or malformed percent-encoding is refused, so no request reaches another path
// than the one it names.

import { invalid, notFound } from '../errors.js'
import { checkName } from '../core/paths.js'

export interface RequestTarget {
  /** The decoded components after /v1/; [] for /v1/ itself. */
  segments: string[]
  /** The path ended in '/' (a directory, for a list). */
  trailingSlash: boolean
  query: URLSearchParams
}

export const API_PREFIX = '/v1/'

export function parseTarget(target: string): RequestTarget {
  const q = target.indexOf('?')
  const rawPath = q < 0 ? target : target.slice(0, q)
  const rawQuery = q < 0 ? '' : target.slice(q + 1)
  if (!rawPath.startsWith(API_PREFIX)) throw notFound('no such API path: the API is under /v1/')
  let rest = rawPath.slice(API_PREFIX.length)
  const trailingSlash = rest.endsWith('/')
  if (trailingSlash) rest = rest.slice(0, -1)
  const segments =
    rest === ''
      ? []
      : rest.split('/').map((raw) => {
          let name: string
          try {
            name = decodeURIComponent(raw)
          } catch {
            throw invalid('the path has malformed percent-encoding')
          }
          checkName(name)
          return name
        })
  return { segments, trailingSlash, query: new URLSearchParams(rawQuery) }
}

/** A yes/no query parameter: absent or 'false' is no, 'true' (or empty, as in ?list) is yes. */
export function queryFlag(query: URLSearchParams, name: string): boolean {
  const v = query.get(name)
  if (v === null || v === 'false') return false
  if (v === 'true' || v === '') return true
  throw invalid(`the query parameter ${name} must be true or false`)
}
