#!/usr/bin/env bash
# The native module's unit tests under valgrind's memcheck (`make memcheck`, part of `make test`).
# The hook tests free a filter inside the answer to a preflight, as Envoy 1.38 and 1.39 do; a
# hook that touched the filter afterwards would pass a plain `cargo test` (a read of freed
# memory usually goes unnoticed) and fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cargo test -p cors-native --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cors":
        print(m["executable"])')
[ -n "$bin" ] || { echo "memcheck.sh: no cors-native test binary" >&2; exit 1; }
valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite "$bin" --test-threads=1 -q
