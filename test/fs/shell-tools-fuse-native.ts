// The shell-tools suite again, on the fuse-native binding (--fuse fuse-native), the fallback and
// the way to macOS: every tool must work the same on both bindings.
process.env.SECRETFS_FUSE = 'fuse-native'
await import('./shell-tools.js')
