#!/usr/bin/env bash
# How evenly `--partition K/3` splits Miri's work, on a crate of very uneven tests (default:
# fixtures/partition-mix; give another workspace as the argument). Runs, one after another:
#   the single run (`--partition 1/1`) and the three slices with no history, then the same
#   with the durations the single run measured. Each report records the wall time its Miri
#   units took (`partition.execution_ms`, builds and listing left out). Prints every slice,
#   the slowest, and slowest ÷ (single ÷ 3): the target is at most 1.25 with history.
# Usage: bench/partition-balance.sh [WORKSPACE]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
crate=${1:-$repo/fixtures/partition-mix}
work=$repo/target/bench-partition
rm -rf "$work"
mkdir -p "$work"
cargo build --release -q -p runner
runner=$repo/target/release/runner

execution() { # report folder → seconds the stage's units ran
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]+"/report.json")); print(r["stages"][0]["partition"]["execution_ms"]/1000)' "$1"
}
run() { # label partition durations-file
  "$runner" miri "$crate" -q --no-provision --partition "$2" --durations "$3" --out "$work/$1" >/dev/null 2>&1 || true
  execution "$work/$1"
}
# The build and the sysroot first, so no measured run pays for them.
"$runner" miri "$crate" -q --no-provision --partition 1/1 --durations "$work/warmup.json" --out "$work/warmup" >/dev/null 2>&1 || true

echo '{}' >"$work/none.json"
for history in none with; do
  if [ $history = none ]; then file=$work/none.json; else file=$work/history.json; fi
  single=$(run "single-$history" 1/1 "$file")
  [ $history = none ] && cp "$work/single-none/durations.json" "$work/history.json"
  slices=()
  for k in 1 2 3; do slices+=("$(run "slice-$k-$history" "$k/3" "$file")"); done
  slowest=$(printf '%s\n' "${slices[@]}" | sort -g | tail -1)
  printf '%-13s single %6.1f s   slices %6.1f %6.1f %6.1f s   slowest / (single / 3) = %.2f\n' \
    "$history history" "$single" "${slices[@]}" "$(echo "$slowest / ($single / 3)" | bc -l)"
done
