#!/usr/bin/env bash
# Builds and runs consumer.cpp against cqlcoro with nothing but `pkg-config --cflags --libs cqlcoro`,
# twice: installed (meson install into a staging directory) and uninstalled (the build tree's
# meson-uninstalled/ files).
# Usage: check_pkgconfig.sh BUILD_DIR COMPILER [EXTRA_FLAGS...]   (EXTRA_FLAGS: the build's sanitizers)
# The node: the first of $CQLCORO_TEST_HOSTS (127.0.0.1 without it).
set -euo pipefail
build=$(cd "$1" && pwd) cxx=$2; shift 2
hosts=${CQLCORO_TEST_HOSTS:-127.0.0.1}
host=${hosts%%,*}
extra=("$@")
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

run_consumer() {  # run_consumer NAME LIBDIR: compile with pkg-config's flags only, then run
  local name=$1 libdir=$2 flags
  flags=$(pkg-config --cflags --libs cqlcoro)
  echo "check_pkgconfig: $name: pkg-config --cflags --libs cqlcoro: $flags"
  # shellcheck disable=SC2086
  "$cxx" -std=c++20 "${extra[@]}" "$here/consumer.cpp" -o "$stage/consumer-$name" $flags
  LD_LIBRARY_PATH=$libdir "$stage/consumer-$name" "$host"
}

# Installed, into a staging root: the .pc file's prefix is re-rooted there by pkg-config's sysroot.
meson install -C "$build" --no-rebuild --quiet --destdir "$stage/root" > /dev/null
pc=$(find "$stage/root" -name cqlcoro.pc | head -n 1)
[[ -n $pc ]] || { echo "check_pkgconfig: meson install put no cqlcoro.pc"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$stage/root" PKG_CONFIG_DISABLE_UNINSTALLED=1 \
  run_consumer installed "$libdir"

# Uninstalled: pkg-config prefers cqlcoro-uninstalled.pc when it finds one.
PKG_CONFIG_PATH="$build/meson-uninstalled" run_consumer uninstalled "$build/lib"
echo "check_pkgconfig: both consumers built and ran"
