#!/usr/bin/env bash
# How a durations file would split across 1, 2, 4, 8 and 16 CI jobs: per stage, the ideal
# makespan (total ÷ N), the planned one (the slowest slice runner's split gives) and the
# floor (the longest single test). Default: the published `bytes` crate's durations as
# bench/kernel-speed.sh leaves them.
# Usage: bench/partition-plan.sh [DURATIONS_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-target/bench-crates/bytes-1.11.1/.runner/durations.json}
[ -f "$file" ] || { echo "no durations at $file: run bench/kernel-speed.sh first, or name a file" >&2; exit 2; }
cargo build --release -q -p runner
target/release/runner partitions "$file"
