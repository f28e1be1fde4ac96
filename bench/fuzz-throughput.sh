#!/usr/bin/env bash
# Fuzzing throughput through runner against `cargo fuzz run` by hand: the same target, the
# same time, the same seed and the same starting corpus, alternating which goes first.
# Prints executions per second for both (libFuzzer's own average, and executions over wall
# time) and their ratio; the acceptance is runner/hand >= 0.95.
#
# Usage: bench/fuzz-throughput.sh [SECONDS=30] [ROUNDS=3] [TARGET=checksum]
set -euo pipefail

seconds=${1:-30}
rounds=${2:-3}
target=${3:-checksum}
repo=$(cd "$(dirname "$0")/.." && pwd)
channel=$(sed -n 's/^channel = "\(.*\)"/\1/p' "$repo/pin/toolchain.toml")
tools="${RUNNER_CACHE_DIR:-$HOME/.cache/runner}/tools/bin"
export PATH="$tools:$PATH"
# Shared with the end-to-end tests: libFuzzer itself is built once per machine.
export CARGO_TARGET_DIR="$repo/fixtures/fuzz-bugs/target"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$repo/fixtures/fuzz-bugs" "$work/ws"
rm -rf "$work/ws/target" "$work/ws/fuzz/corpus" "$work/ws/fuzz/artifacts"
fuzz="$work/ws/fuzz"
corpus="$fuzz/corpus/$target"

(cd "$repo" && cargo build --quiet -p runner)
runner="$repo/target/debug/runner"
# Builds the targets exactly as runner fuzzes them, so neither side pays for a build.
"$runner" fuzz "$work/ws" --check --out "$work/check" --quiet >/dev/null 2>&1

by_hand() {
    local extra=()
    [ -d "$fuzz/seeds/$target" ] && extra+=("$fuzz/seeds/$target")
    local dict=()
    [ -f "$fuzz/$target.dict" ] && dict+=("-dict=$fuzz/$target.dict")
    cargo "+$channel" fuzz run --fuzz-dir "$fuzz" \
        --target-dir "$CARGO_TARGET_DIR/runner-build/fuzz/address" --sanitizer address \
        "$target" "$corpus" "${extra[@]}" -- \
        -max_total_time="$seconds" -seed=1 -print_final_stats=1 "${dict[@]}" \
        2>"$work/hand.err" >/dev/null || true
    cp "$work/hand.err" "$1"
}

through_runner() {
    rm -rf "$work/out"
    "$runner" fuzz "$work/ws" --fuzz-time "${seconds}s" --jobs 1 --out "$work/out" --quiet \
        -- "$target" >/dev/null 2>&1 || true
    cat "$work/out"/fuzz/logs/"$target"-*.err > "$1"
}

stat() { sed -n "s/^stat::$1: *//p" "$2" | awk '{s += $1} END {print s + 0}'; }

measure() { # $1 = hand|runner, $2 = round
    rm -rf "$corpus"
    mkdir -p "$corpus"
    local log="$work/$1-$2.err" start end wall execs avg total
    start=$(date +%s.%N)
    if [ "$1" = hand ]; then by_hand "$log"; else through_runner "$log"; fi
    end=$(date +%s.%N)
    total=$(python3 -c "print($end - $start)")
    execs=$(stat number_of_executed_units "$log")
    avg=$(stat average_exec_per_sec "$log")
    if [ "$1" = hand ]; then
        wall=$total
    else
        # The target's own fuzzing time from the report: what `cargo fuzz run` did inside
        # runner. Runner's set-up (metadata, tool checks, build check) is printed apart.
        wall=$(jq ".stages[0].targets[0].counts.duration_ms / 1000" "$work/out/report.json")
    fi
    python3 - "$1" "$2" "$execs" "$wall" "$avg" "$total" <<'PY'
import sys
who, round_, execs, wall, avg, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
setup = f"; runner set-up and report {total - wall:4.1f} s" if who == "runner" else ""
print(f"{who:>6} round {round_}: {execs:>10} executions in {wall:5.1f} s; libFuzzer {avg:8.0f}/s; executions/wall {execs / wall:8.0f}/s{setup}")
PY
    echo "$1 $avg $(python3 -c "print($execs / $wall)")" >> "$work/figures"
}

echo "target $target, ${seconds}s per run, $rounds rounds, seed 1, empty corpus each run"
for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then order="hand runner"; else order="runner hand"; fi
    for who in $order; do measure "$who" "$round"; done
done

python3 - "$work/figures" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
def median(who, column):
    return statistics.median(float(r[column]) for r in rows if r[0] == who)
for column, name in ((1, "libFuzzer exec/s"), (2, "executions / wall s")):
    hand, runner = median("hand", column), median("runner", column)
    print(f"median {name:>20}: by hand {hand:9.0f}, through runner {runner:9.0f}, ratio {runner / hand:.3f}")
PY
