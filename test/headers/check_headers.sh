#!/usr/bin/env bash
# Users build with -Wall -Wextra -Wpedantic, often as errors: our public headers must stay quiet there.
# Compiles, with each compiler given, one file that includes every public header and the public
# samples (which use most of the API, so that the inline functions and templates are instantiated:
# most warnings show only then).
# Usage: check_headers.sh INCLUDE_DIR SAMPLES_DIR COMPILER... (public_api_use.cpp beside this script is
# checked too).
set -euo pipefail
include=$1 samples=$2; shift 2
tu=$(mktemp --suffix=.cpp)
trap 'rm -f "$tu"' EXIT
for h in "$include"/cqlcoro/*.hpp; do echo "#include <cqlcoro/$(basename "$h")>"; done > "$tu"
# Nothing leaks from namespace cqlcoro: an application's own `asio` stays unambiguous beside
# `using namespace cqlcoro`.
cat >> "$tu" <<'EOF'
namespace asio { inline int mine = 0; }
using namespace cqlcoro;
int main() { return asio::mine; }
EOF
files=("$tu" "$(dirname "$0")/public_api_use.cpp")
for f in quickstart multithreaded no_throw logging_middleware stream_rows custom_retry http_service/service http_service/main; do
  files+=("$samples/$f.cpp")
done
status=0
for cxx in "$@"; do
  if ! command -v "$cxx" > /dev/null; then echo "check_headers: $cxx not found"; status=1; continue; fi
  for f in "${files[@]}"; do
    if ! "$cxx" -std=c++20 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$include" "$f"; then
      echo "check_headers: $cxx: warnings from the public headers in $(basename "$f") (above)"
      status=1
    fi
  done
  echo "check_headers: $cxx: $(grep -c include "$tu") public headers and ${#files[@]} files checked"
done
exit $status
