// The system checks made before loading fuse-native.
import t from 'tap'
import { explainLoadError, findOnPath } from '../../src/daemon/fuse-library.js'

t.test('a missing libfuse.so.2 is explained with the package to install', async (t) => {
  const loaderError = new Error('libfuse.so.2: cannot open shared object file: No such file or directory')
  t.match(explainLoadError(loaderError), /libfuse\.so\.2 .*missing.*apt-get install libfuse2/)
  t.match(explainLoadError(new Error('something else\nstack')), /could not be loaded: something else$/)
})

t.test('fusermount is looked up on PATH', async (t) => {
  t.ok(await findOnPath('fusermount'), 'installed on this machine')
  t.equal(await findOnPath('fusermount', '/nonexistent:'), undefined)
})
