# The secretfs_native addon, built by node-gyp on `npm ci`: what secretfs needs of the system that
# Node itself offers no way to do. Add new sources under src/native/ to this target.
{
  "targets": [
    {
      "target_name": "secretfs_native",
      "sources": ["src/native/addon.c", "src/native/process-hardening.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"]
    }
  ]
}
