// The mount table as `secretfs mounts` and sys/mounts print it: Path, Type, Description.

export interface MountRow {
  path: string
  type: string
  description: string
}

export function formatMountsTable(rows: MountRow[]): string {
  const sorted = [...rows].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const lines = [['Path', 'Type', 'Description'], ...sorted.map((r) => [r.path, r.type, r.description])]
  const w0 = Math.max(...lines.map((l) => l[0]!.length)) + 2
  const w1 = Math.max(...lines.map((l) => l[1]!.length)) + 2
  return lines.map(([p, t, d]) => (p!.padEnd(w0) + t!.padEnd(w1) + d).trimEnd() + '\n').join('')
}
