#!/usr/bin/env bash
# Builds test/install/meson, a project that takes cqlcoro as a meson subproject (dependency('cqlcoro')
# through the library's meson.override_dependency), and runs its consumer.
# Usage: check_meson.sh SOURCE_ROOT COMPILER [EXTRA_FLAGS...]   (EXTRA_FLAGS: the build's sanitizers)
# The node: the first of $CQLCORO_TEST_HOSTS (127.0.0.1 without it).
set -euo pipefail
src=$(cd "$1" && pwd) cxx=$2; shift 2
hosts=${CQLCORO_TEST_HOSTS:-127.0.0.1}
host=${hosts%%,*}
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# The parent project as a user lays it out: its own tree, the library under subprojects/.
mkdir -p "$stage/project/subprojects" "$stage/install"
cp "$here/meson/meson.build" "$stage/project/"
cp "$here/consumer.cpp" "$stage/install/"
sed -i "s|'../consumer.cpp'|'$stage/install/consumer.cpp'|" "$stage/project/meson.build"
ln -s "$src" "$stage/project/subprojects/cqlcoro"
# --force-fallback-for: an installed cqlcoro on this machine must not stand in for the subproject.
# A unity build of the subproject and no optimization keep the library's compile short.
flags=()
[[ $# -gt 0 ]] && flags=(-Dcpp_args="$*" -Dcpp_link_args="$*")
CXX=$cxx meson setup "$stage/build" "$stage/project" --force-fallback-for=cqlcoro --unity=subprojects \
  -Dbuildtype=plain "${flags[@]}" > "$stage/setup.log" 2>&1 ||
  { cat "$stage/setup.log"; exit 1; }
grep -q "Dependency cqlcoro found: YES .*(overridden)" "$stage/setup.log" ||
  { echo "check_meson: dependency('cqlcoro') did not come from the subproject"; cat "$stage/setup.log"; exit 1; }
ninja -C "$stage/build" > "$stage/ninja.log" 2>&1 || { cat "$stage/ninja.log"; exit 1; }
"$stage/build/consumer" "$host"
echo "check_meson: dependency('cqlcoro') from subprojects/cqlcoro built the consumer, and it ran"
