#!/usr/bin/env bash
# A CI matrix of N jobs played on one machine: `runner all --partition K/N --no-cache` for
# K = 1..N one after another with a warm target dir (what a CI job restores from its cache),
# then `runner merge` of the N report folders. Prints per slice its wall time, then the
# makespan (the slowest slice: what the matrix waits for), the sum, the longest single test,
# and the ratio of the makespan to max(sum / N, longest test) (target <= 1.25). Measured once
# more at the end: what a slice adds with a cold target dir (its builds), by running slice 1
# again after removing runner's build folders.
#
# Usage: bench/matrix.sh N [WORKSPACE]      (default workspace: the published `bytes` 1.11.1)
#   MATRIX_DURATIONS=FILE  the durations file every slice splits by (default: the workspace's
#                          .runner/durations.json when it exists, else none: a first run)
#   MATRIX_COLD=0          skip the cold-target-dir measurement
#   RUNNER=/path/to/runner the binary (default: `cargo build --release -p runner` of this checkout)
# Every slice and the merge run with -q; their logs are in target/matrix/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
count=${1:?usage: bench/matrix.sh N [WORKSPACE]}
case $count in '' | *[!0-9]* | 0) echo "N must be a whole number from 1" >&2; exit 2 ;; esac
workspace=${2:-}
[ -n "$workspace" ] || workspace=$("$repo/bench/fetch-bytes.sh")
workspace=$(cd "$workspace" && pwd)
work=$repo/target/matrix
logs=$work/logs
rm -rf "$work/slices" "$work/merged" "$logs"
mkdir -p "$work/slices" "$logs"

runner=${RUNNER:-}
if [ -z "$runner" ]; then
  cargo build --release -q -p runner
  runner=$repo/target/release/runner
fi
durations=${MATRIX_DURATIONS:-$workspace/.runner/durations.json}
# A slice never writes the durations file it splits by; without one, every slice splits as a
# first run does.
if [ ! -f "$durations" ]; then
  durations=$work/no-durations.json
  rm -f "$durations"
fi
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

# Warm the builds: every stage builds and lists its tests, and runs none of them.
echo "warming the target dir (builds, no tests) ..."
start=$(now)
"$runner" all "$workspace" -q --no-cache --durations "$work/warm-durations.json" \
  --out "$work/warm" -- runner-matrix-matches-no-test >"$logs/warm.log" 2>&1 || true
printf 'warm-up (builds and listing): %.1f s\n' "$(elapsed "$start")"

walls=()
for k in $(seq 1 "$count"); do
  start=$(now)
  code=0
  "$runner" all "$workspace" -q --no-cache --partition "$k/$count" --durations "$durations" \
    --out "$work/slices/$k" >"$logs/slice-$k.log" 2>&1 || code=$?
  wall=$(elapsed "$start")
  walls+=("$wall")
  printf 'slice %2d/%d: %8.1f s  (exit %d)\n' "$k" "$count" "$wall" "$code"
done

dirs=()
for k in $(seq 1 "$count"); do dirs+=("$work/slices/$k"); done
code=0
"$runner" -q merge "${dirs[@]}" --out "$work/merged" >"$logs/merge.log" 2>&1 || code=$?
echo "merge: exit $code; report in $work/merged/report.md"

# The longest single test, from the merged measurements (wall time per test).
longest=$(python3 -c 'import json,sys
try:
    d = json.load(open(sys.argv[1]))
except OSError:
    print(0); sys.exit()
print(max([s for stage in d.get("stages", {}).values() for s in stage.values()] or [0]))' \
  "$work/merged/durations.json")
python3 - "$count" "$longest" "${walls[@]}" <<'EOF'
import sys
count, longest = int(sys.argv[1]), float(sys.argv[2])
walls = [float(w) for w in sys.argv[3:]]
makespan, total = max(walls), sum(walls)
floor = max(total / count, longest)
print(f"makespan (slowest slice) {makespan:.1f} s; sum {total:.1f} s; sum/N {total / count:.1f} s; "
      f"longest test {longest:.1f} s")
print(f"makespan / max(sum/N, longest test) = {makespan / floor:.2f} (target <= 1.25)")
EOF

if [ "${MATRIX_COLD:-1}" != 0 ]; then
  # What a job without a restored target dir adds: slice 1 again after runner's builds go.
  rm -rf "$workspace/target/runner-build"
  start=$(now)
  "$runner" all "$workspace" -q --no-cache --partition "1/$count" --durations "$durations" \
    --out "$work/cold" >"$logs/cold.log" 2>&1 || true
  cold=$(elapsed "$start")
  printf 'slice 1/%d with a cold target dir: %.1f s (warm %.1f s): builds add %.1f s\n' \
    "$count" "$cold" "${walls[0]}" "$(echo "$cold - ${walls[0]}" | bc)"
fi
