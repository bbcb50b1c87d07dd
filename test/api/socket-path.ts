import t from 'tap'
import { defaultSocketPath, parseAddress, socketCandidates } from '../../src/api/socket-path.js'

t.test('the runtime dir first, then the data dir, then /tmp per user', async (t) => {
  t.same(socketCandidates({ XDG_RUNTIME_DIR: '/run/user/1000', HOME: '/home/me' }, 1000), [
    '/run/user/1000/secretfs/secretfs.sock',
    '/home/me/.local/share/secretfs/secretfs.sock',
    '/tmp/secretfs-1000/secretfs.sock',
  ])
  t.equal(defaultSocketPath({ HOME: '/home/me', XDG_DATA_HOME: '/data' }, 5), '/data/secretfs/secretfs.sock')
  t.equal(defaultSocketPath({}, 5), '/tmp/secretfs-5/secretfs.sock', 'no home at all')
  t.equal(defaultSocketPath({ HOME: 'relative' }, 5), '/tmp/secretfs-5/secretfs.sock')
  const deep = '/home/' + 'x'.repeat(100)
  t.equal(defaultSocketPath({ HOME: deep }, 5), '/tmp/secretfs-5/secretfs.sock', 'too long to bind: skipped')
})

t.test('addresses as users write them', async (t) => {
  t.equal(parseAddress('/run/s.sock'), '/run/s.sock')
  t.equal(parseAddress('unix:///run/s.sock'), '/run/s.sock')
  t.equal(parseAddress('unix:/run/s.sock'), '/run/s.sock')
  t.equal(parseAddress('s.sock'), `${process.cwd()}/s.sock`)
  t.throws(() => parseAddress('http://127.0.0.1:8200'), /Unix socket/)
  t.throws(() => parseAddress(''), /empty/)
})
