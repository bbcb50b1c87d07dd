#!/usr/bin/env bash
# Prepares a fresh Debian or Ubuntu machine: the system packages secretfs needs (fuse3 for
# fusermount3, and libfuse3-dev and pkg-config to build secretfs's FUSE binding on libfuse 3;
# libfuse2 for fuse-native's addon, the fallback binding, which uses fuse3's fusermount link;
# python3, make and g++ for node-gyp to build secretfs's addons; vim, curl and rsync, which the
# tests drive, strace, with which they watch the store sync each write, and postgresql, whose
# PostgreSQL 15 (Debian 12's version) the database backend tests run as servers of their own on
# free ports; the cluster service that Debian's package starts is left alone), then `npm ci`,
# which also builds secretfs. Debian's fuse3 replaces the old fuse package. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in fuse3 libfuse3-dev pkg-config libfuse2 python3 make g++ vim curl rsync strace postgresql; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing system packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
