#!/usr/bin/env bash
# Runs one fuzz target for a bounded time over the seed corpus in the tree. New inputs go to a scratch
# directory in the build tree (the tree's corpus stays as committed); a crash leaves its input there.
set -euo pipefail
target=$1 seeds=$2 seconds=$3 work=$4
mkdir -p "$work/corpus" "$work/artifacts"
# libFuzzer exits 77 on a finding by default, which meson would count as a skip: make it a failure.
exec "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds"
