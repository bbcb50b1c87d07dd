// The router: finds the mount that owns a path and the backend instance serving it.

import type { Backend } from '../backends/backend.js'
import { notFound } from '../errors.js'
import type { MountEntry } from './mount-table.js'
import { splitPath } from './paths.js'

export interface Route {
  entry: MountEntry
  backend: Backend
}

export class Router {
  readonly #routes = new Map<string, Route>()

  /** The route for 'mount/rest' and the path within the mount. */
  route(path: string): { route: Route; rest: string } {
    const { mount, rest } = splitPath(path)
    const route = this.#routes.get(mount)
    if (!route) throw notFound('no mount at that path')
    return { route, rest }
  }

  get(mountPath: string): Route | undefined {
    return this.#routes.get(mountPath)
  }

  add(route: Route): void {
    this.#routes.set(route.entry.path, route)
  }

  remove(mountPath: string): void {
    this.#routes.delete(mountPath)
  }

  byUuid(uuid: string): Route | undefined {
    for (const route of this.#routes.values()) if (route.entry.uuid === uuid) return route
    return undefined
  }

  routes(): Route[] {
    return [...this.#routes.values()]
  }

  entries(): MountEntry[] {
    return [...this.#routes.values()].map((r) => r.entry)
  }

  clear(): void {
    this.#routes.clear()
  }
}
