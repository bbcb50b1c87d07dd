# secretfs's addons, built by node-gyp on `npm ci`: what secretfs needs of the system that Node
# itself offers no way to do (secretfs_native), and its FUSE binding on libfuse 3's low-level API
# (secretfs_fuse, apart so that a machine without libfuse 3 still loads the first). Add new
# sources under src/native/ to the target they belong to.
{
  "targets": [
    {
      "target_name": "secretfs_native",
      "sources": ["src/native/addon.c", "src/native/process-hardening.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"]
    },
    {
      "target_name": "secretfs_fuse",
      "sources": ["src/native/fuse-lowlevel.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-fvisibility=hidden", "<!@(pkg-config --cflags fuse3)"],
      "libraries": ["<!@(pkg-config --libs fuse3)"]
    }
  ]
}
