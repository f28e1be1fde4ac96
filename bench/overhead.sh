#!/usr/bin/env bash
# runner's own overhead. (1) Parse + render time on a large captured log, in ms. (2) Per stage
# on real workspaces: runner's own CPU time (planning, parsing, rendering, piping logs; the
# report's `overhead_ms`) as a share of the stage's wall time (target: <= 2 %).
# Usage: bench/overhead.sh [WORKSPACE...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -q -p runner --bench overhead
cargo build --release -q -p runner
for workspace in "${@:-fixtures/miri-bugs demo}"; do
  for ws in $workspace; do
    out=$PWD/target/bench-overhead/$(basename "$ws")
    ./target/release/runner all "$ws" -q --out "$out" >/dev/null 2>&1 || true
    python3 - "$out/report.json" "$ws" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for stage in report["stages"]:
    if stage["status"] == "SKIPPED":
        continue
    wall, own = stage["duration_ms"], stage.get("overhead_ms", 0)
    print(f"{sys.argv[2]:<22} {stage['stage']:<11} wall {wall/1000:7.1f} s  runner {own:6d} ms  share {100*own/max(wall,1):5.2f} %")
PY
  done
done
