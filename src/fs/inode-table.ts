// The inodes the kernel holds, for the low-level binding: each is a path ('/secret/db') and the
// number of lookups the kernel counted for it, and lives until a FORGET brings that to zero. An
// inode is never reused for another path (numbers only grow); a rename moves the paths of an
// inode and everything under it. The root is inode 1 and is never forgotten.

export const ROOT_INO = 1

interface Node {
  path: string
  lookups: number
}

export class InodeTable {
  readonly #nodes = new Map<number, Node>([[ROOT_INO, { path: '/', lookups: 1 }]])
  /** The inode of each path, when the kernel holds one. */
  readonly #byPath = new Map<string, number>([['/', ROOT_INO]])
  #next = ROOT_INO + 1

  /** The inode the kernel holds for `path`, if any. */
  find(path: string): number | undefined {
    return this.#byPath.get(path)
  }

  /** The path of `ino`, or undefined for one the kernel forgot (or never had). */
  path(ino: number): string | undefined {
    return this.#nodes.get(ino)?.path
  }

  /** The path of `name` in the directory `parent`. */
  child(parent: number, name: string): string | undefined {
    const dir = this.path(parent)
    if (dir === undefined) return undefined
    return dir === '/' ? `/${name}` : `${dir}/${name}`
  }

  /** The inode of `path`, made if there is none; with `counted`, one more lookup the kernel holds. */
  ino(path: string, counted = true): number {
    let ino = this.#byPath.get(path)
    if (ino === undefined) {
      ino = this.#next++
      this.#nodes.set(ino, { path, lookups: 0 })
      this.#byPath.set(path, ino)
    }
    if (counted) this.#nodes.get(ino)!.lookups++
    return ino
  }

  /** Counts a lookup of an inode `ino(path, false)` made (a READDIRPLUS entry that fitted). */
  counted(ino: number): void {
    const node = this.#nodes.get(ino)
    if (node) node.lookups++
  }

  /** The kernel dropped `n` lookups of `ino`: at zero, the inode is gone. */
  forget(ino: number, n: number): void {
    const node = this.#nodes.get(ino)
    if (!node || ino === ROOT_INO) return
    node.lookups -= n
    if (node.lookups > 0) return
    this.#nodes.delete(ino)
    if (this.#byPath.get(node.path) === ino) this.#byPath.delete(node.path)
  }

  /** An inode made and never counted (an entry that did not fit): gone unless counted meanwhile. */
  drop(ino: number): void {
    if (this.#nodes.get(ino)?.lookups === 0) this.forget(ino, 0)
  }

  /** The name at `path` is gone (unlink, rmdir): its inode lives on until forgotten, under no path. */
  removed(path: string): void {
    this.#byPath.delete(path)
  }

  /**
   * `path` and everything under it are gone (an unmount; '/': a seal, which keeps the root).
   * Returns their inodes.
   */
  removedUnder(path: string): number[] {
    const inside = path === '/' ? '/' : path + '/'
    const gone: number[] = []
    for (const [p, ino] of [...this.#byPath]) {
      if (p === '/' || (p !== path && !p.startsWith(inside))) continue
      this.#byPath.delete(p)
      gone.push(ino)
    }
    return gone
  }

  /** `from` (and everything under it) is now at `to`; inodes of names removed before stay where they were. */
  moved(from: string, to: string): void {
    const inside = from + '/'
    this.removedUnder(to)
    for (const [ino, node] of this.#nodes) {
      if (node.path !== from && !node.path.startsWith(inside)) continue
      if (this.#byPath.get(node.path) !== ino) continue
      const moved = to + node.path.slice(from.length)
      this.#byPath.delete(node.path)
      node.path = moved
      this.#byPath.set(moved, ino)
    }
  }

  /** Every inode the kernel holds but the root. */
  get all(): number[] {
    return [...this.#nodes.keys()].filter((ino) => ino !== ROOT_INO)
  }

  /** The paths the kernel holds directly in the root (the mounts it has looked up). */
  get mounts(): string[] {
    return [...this.#byPath.keys()].filter((p) => p !== '/' && p.lastIndexOf('/') === 0)
  }

  get size(): number {
    return this.#nodes.size
  }
}
