// What the database backend fills into SQL and refuses before any SQL runs: placeholders, the
// expiration's format, user names that cannot end a quoted identifier, connection URLs that would
// show a password, and allowed_roles globs.
import t from 'tap'
import { allowsRole, checkConnectionUrl, type DbConfig } from '../../../src/backends/database/path-config.js'
import { dbUserName } from '../../../src/backends/database/dynamic-user.js'
import { checkDbUsername, checkStatements, expirationText, render } from '../../../src/backends/database/statements.js'
import { kind } from '../../helpers/error-match.js'

t.test('placeholders: each field takes its own, and only whole ones', async (t) => {
  t.doesNotThrow(() =>
    checkStatements('creation_statements', [
      `CREATE ROLE "{{name}}" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
    ]),
  )
  t.throws(
    () => checkStatements('revocation_statements', [`ALTER ROLE "{{name}}" PASSWORD '{{password}}'`]),
    kind('invalid'),
  )
  t.throws(
    () => checkStatements('creation_statements', ['{{ name }}']),
    kind('invalid'),
    'spaces are not the placeholder',
  )
  t.throws(() => checkStatements('creation_statements', ['{{.Name}}']), kind('invalid'))
  t.same(render(['A "{{name}}" {{username}} \'{{password}}\''], { name: 'u', password: 'p' }), [`A "u" u 'p'`])
  t.throws(() => render(['{{expiration}}'], { name: 'u' }), kind('invalid'))
})

t.test('the expiration is a time PostgreSQL reads, in UTC', async (t) => {
  t.equal(expirationText(new Date(Date.UTC(2026, 10, 29, 17, 4, 5, 678))), '2026-11-29 17:04:05+0000')
})

t.test("generated user names: Vault's shape, at most 63 characters, safe in a quoted identifier", async (t) => {
  const name = dbUserName('a-very-long-role-name.with@odd_chars', 1_800_000_000_000)
  t.match(name, /^v-secretfs-a-very-l-[A-Za-z0-9]{20}-1800000000$/)
  t.ok(name.length <= 63)
  t.not(dbUserName('r'), dbUserName('r'), 'random')
})

t.test('a user name given for a statement must be a plain identifier', async (t) => {
  for (const good of ['app', 'App_1', '_x', 'svc.api@team-1'])
    t.doesNotThrow(() => checkDbUsername('username', good), good)
  for (const bad of ['', '1app', 'a"b', "a'b", 'a b', 'a\\b', 'x'.repeat(64), 'a;b'])
    t.throws(() => checkDbUsername('username', bad), kind('invalid'), JSON.stringify(bad))
})

t.test('connection URLs', async (t) => {
  const creds = { username: 'root', password: 'pw' }
  t.doesNotThrow(() => checkConnectionUrl('postgresql://{{username}}:{{password}}@db:5432/app?sslmode=require', creds))
  t.doesNotThrow(() => checkConnectionUrl('postgres://{{username}}:{{password}}@/app?host=/run/postgresql', creds))
  t.throws(() => checkConnectionUrl('postgresql://root:hunter2@db/app', creds), kind('invalid', /holds a password/))
  t.throws(() => checkConnectionUrl('postgresql://db/app?password=hunter2', creds), kind('invalid', /holds a password/))
  t.throws(() => checkConnectionUrl('mysql://{{username}}:{{password}}@db/app', creds), kind('invalid'))
  t.throws(() => checkConnectionUrl('postgresql://{{user}}@db/app', creds), kind('invalid', /placeholder/))
  t.throws(
    () => checkConnectionUrl('postgresql://{{username}}:{{password}}@db/app', { username: 'r', password: '' }),
    kind('invalid', /password field/),
  )
})

t.test('allowed_roles: names and globs; empty allows none', async (t) => {
  const config = (allowed: string[]) => ({ allowed_roles: allowed }) as DbConfig
  t.notOk(allowsRole(config([]), 'ro'))
  t.ok(allowsRole(config(['*']), 'ro'))
  t.ok(allowsRole(config(['app-*']), 'app-ro'))
  t.notOk(allowsRole(config(['app-*']), 'other'))
  t.notOk(allowsRole(config(['r.']), 'ro'), 'a dot is a dot, not any character')
})
