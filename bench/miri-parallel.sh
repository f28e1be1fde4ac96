#!/usr/bin/env bash
# Miri sharding speed-up: wall time of `runner miri` (shards across --jobs Miri processes,
# balanced by measured durations) against a plain `cargo miri test` of the same crate, both
# with warm builds. Prints both times and their ratio (target: <= 0.6 on 2 cores).
# Usage: bench/miri-parallel.sh [JOBS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-$(nproc)}
rounds=${2:-3}
crate=fixtures/miri-many
channel=$(sed -n 's/^channel = "\(.*\)"/\1/p' pin/toolchain.toml)
target_dir=$PWD/$crate/target/bench-plain

cargo build --release -q -p runner
runner=$PWD/target/release/runner
now() { date +%s.%N; }

# Warm both sides: builds, sysroot, and runner's duration history for balancing.
cargo "+$channel" miri test --manifest-path "$crate/Cargo.toml" --target-dir "$target_dir" -q >/dev/null 2>&1
"$runner" miri "$crate" --jobs "$jobs" -q --out "$crate/target/bench-runner" >/dev/null 2>&1

plain_total=0
runner_total=0
for round in $(seq "$rounds"); do
  start=$(now)
  cargo "+$channel" miri test --manifest-path "$crate/Cargo.toml" --target-dir "$target_dir" -q >/dev/null 2>&1
  plain=$(echo "$(now) - $start" | bc)
  start=$(now)
  "$runner" miri "$crate" --jobs "$jobs" -q --out "$crate/target/bench-runner" >/dev/null 2>&1
  sharded=$(echo "$(now) - $start" | bc)
  printf 'round %s: plain cargo miri test %6.1f s   runner --jobs %s %6.1f s\n' "$round" "$plain" "$jobs" "$sharded"
  plain_total=$(echo "$plain_total + $plain" | bc)
  runner_total=$(echo "$runner_total + $sharded" | bc)
done
printf 'mean: plain %.1f s, runner %.1f s, ratio %.2f\n' \
  "$(echo "$plain_total / $rounds" | bc -l)" "$(echo "$runner_total / $rounds" | bc -l)" \
  "$(echo "$runner_total / $plain_total" | bc -l)"
