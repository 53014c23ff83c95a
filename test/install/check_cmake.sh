#!/usr/bin/env bash
# Builds test/install/cmake (consumer.cpp through find_package(cqlcoro) and the imported targets
# cqlcoro::cqlcoro and cqlcoro::cqlcoro_static) against a staged `meson install`, and runs both.
# Usage: check_cmake.sh BUILD_DIR COMPILER [EXTRA_FLAGS...]   (EXTRA_FLAGS: the build's sanitizers)
# The node: the first of $CQLCORO_TEST_HOSTS (127.0.0.1 without it).
set -euo pipefail
build=$(cd "$1" && pwd) cxx=$2; shift 2
hosts=${CQLCORO_TEST_HOSTS:-127.0.0.1}
host=${hosts%%,*}
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
command -v cmake > /dev/null || { echo "check_cmake: cmake is not installed (scripts/setup installs it)"; exit 1; }

meson install -C "$build" --no-rebuild --quiet --destdir "$stage/root" > /dev/null
config=$(find "$stage/root" -name cqlcoroConfig.cmake | head -n 1)
[[ -n $config ]] || { echo "check_cmake: meson install put no cqlcoroConfig.cmake"; exit 1; }
prefix=$(cd "$(dirname "$config")/../../../.." && pwd)
libdir=$(dirname "$(dirname "$(dirname "$config")")")
cmake -S "$here/cmake" -B "$stage/build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_FLAGS="$*" -DCMAKE_EXE_LINKER_FLAGS="$*" > "$stage/cmake.log" 2>&1 || { cat "$stage/cmake.log"; exit 1; }
ninja -C "$stage/build" > "$stage/ninja.log" 2>&1 || { cat "$stage/ninja.log"; exit 1; }
echo "check_cmake: shared:"
LD_LIBRARY_PATH=$libdir "$stage/build/consumer" "$host"
echo "check_cmake: static:"
"$stage/build/consumer_static" "$host"
echo "check_cmake: find_package(cqlcoro) built both consumers, and both ran"
