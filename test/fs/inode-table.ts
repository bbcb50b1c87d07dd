// The low-level binding's inode table: lookups counted and forgotten, names removed while their
// inode lives on, renames that move a whole subtree, and entries the kernel never got dropped.
import t from 'tap'
import { InodeTable, ROOT_INO } from '../../src/fs/inode-table.js'

t.test('an inode lives until the kernel forgets every lookup of it', async (t) => {
  const table = new InodeTable()
  t.equal(table.path(ROOT_INO), '/')
  const a = table.ino('/secret')
  t.equal(table.ino('/secret'), a, 'one inode per path')
  t.equal(table.child(a, 'db'), '/secret/db')
  table.forget(a, 1)
  t.equal(table.path(a), '/secret', 'one lookup is left')
  table.forget(a, 1)
  t.equal(table.path(a), undefined, 'forgotten')
  t.not(table.ino('/secret'), a, 'a number is never used again')
  table.forget(ROOT_INO, 100)
  t.equal(table.path(ROOT_INO), '/', 'the root is never forgotten')
})

t.test('a removed name keeps its inode until forgotten; a new file there gets a new one', async (t) => {
  const table = new InodeTable()
  const old = table.ino('/secret/f')
  table.removed('/secret/f')
  const fresh = table.ino('/secret/f')
  t.not(fresh, old)
  t.equal(table.path(old), '/secret/f', 'the old inode still answers (an open file)')
  table.forget(old, 1)
  t.equal(table.path(fresh), '/secret/f', "forgetting the old one leaves the new one's path")
  t.equal(table.ino('/secret/f', false), fresh)
})

t.test('a rename moves the inode and everything under it', async (t) => {
  const table = new InodeTable()
  const dir = table.ino('/secret/team')
  const file = table.ino('/secret/team/db')
  const other = table.ino('/secret/teammate')
  const target = table.ino('/secret/crew')
  table.moved('/secret/team', '/secret/crew')
  t.equal(table.path(dir), '/secret/crew')
  t.equal(table.path(file), '/secret/crew/db')
  t.equal(table.path(other), '/secret/teammate', 'a name that only starts the same stays')
  t.equal(table.ino('/secret/crew', false), dir, 'the path is the moved inode now')
  t.equal(table.path(target), '/secret/crew', 'the replaced one answers until forgotten')
})

t.test('an entry made for READDIRPLUS is counted only if the kernel got it', async (t) => {
  const table = new InodeTable()
  const got = table.ino('/secret/a', false)
  const lost = table.ino('/secret/b', false)
  table.counted(got)
  table.drop(lost)
  table.drop(got)
  t.equal(table.path(got), '/secret/a')
  t.equal(table.path(lost), undefined)
  t.equal(table.size, 2, 'the root and the one the kernel holds')
})
