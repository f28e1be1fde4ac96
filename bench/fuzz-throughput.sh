#!/usr/bin/env bash
# Fuzzing throughput through runner against `cargo fuzz run` by hand: the same target, seed,
# starting corpus (empty), options and time, started together on this machine so both see
# the same background load (a shared machine swings throughput by ±30 % between minutes).
# Prints executions per second for both (libFuzzer's own average, and executions over the
# fuzzing wall time) per round and the median ratio; the acceptance is runner/hand >= 0.95.
#
# Usage: bench/fuzz-throughput.sh [SECONDS=30] [ROUNDS=3] [TARGET=checksum] [MODE=paired]
#   MODE=paired: both at once, one core each (needs 2 cores);
#   MODE=serial: one after the other, alternating which goes first (needs a quiet machine).
set -euo pipefail

seconds=${1:-30}
rounds=${2:-3}
target=${3:-checksum}
mode=${4:-paired}
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

(cd "$repo" && cargo build --quiet -p runner 2>/dev/null)
runner="$repo/target/debug/runner"
# Builds the targets exactly as runner fuzzes them, so neither side pays for a build.
"$runner" fuzz "$work/ws" --check --out "$work/check" --quiet >/dev/null 2>&1

# The command a person types, with what runner adds on its own for this target: the seed
# corpus and dictionary when the project has them, and a fixed seed for both.
by_hand() { # $1 = log
    local corpus="$work/hand-corpus"
    rm -rf "$corpus" && mkdir -p "$corpus"
    local extra=() dict=()
    [ -d "$fuzz/seeds/$target" ] && extra+=("$fuzz/seeds/$target")
    [ -f "$fuzz/$target.dict" ] && dict+=("-dict=$fuzz/$target.dict")
    local start end
    start=$(date +%s.%N)
    cargo "+$channel" fuzz run --fuzz-dir "$fuzz" \
        --target-dir "$CARGO_TARGET_DIR/runner-build/fuzz/address" --sanitizer address \
        "$target" "$corpus" "${extra[@]}" -- \
        -max_total_time="$seconds" -seed=1 -print_final_stats=1 "${dict[@]}" \
        2>"$1" >/dev/null || true
    end=$(date +%s.%N)
    python3 -c "print($end - $start)" > "$1.wall"
}

through_runner() { # $1 = log
    rm -rf "$fuzz/corpus/$target" "$work/out"
    "$runner" fuzz "$work/ws" --fuzz-time "${seconds}s" --jobs 1 --out "$work/out" --quiet \
        -- "$target" >/dev/null 2>&1 || true
    cat "$work/out"/fuzz/logs/"$target"-*.err > "$1"
    # The target's own fuzzing time from the report: what `cargo fuzz run` did inside runner.
    jq ".stages[0].targets[0].counts.duration_ms / 1000" "$work/out/report.json" > "$1.wall"
}

stat() { sed -n "s/^stat::$1: *//p" "$2" | awk '{s += $1} END {print s + 0}'; }

report() { # $1 = hand|runner, $2 = round
    local log="$work/$1-$2.err"
    python3 - "$1" "$2" "$(stat number_of_executed_units "$log")" "$(cat "$log.wall")" \
        "$(stat average_exec_per_sec "$log")" "$work/figures" <<'PY'
import sys
who, round_, execs, wall, avg, figures = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
print(f"{who:>6} round {round_}: {execs:>10} executions in {wall:5.1f} s; libFuzzer {avg:8.0f}/s; executions/wall {execs / wall:8.0f}/s")
with open(figures, "a") as out:
    out.write(f"{who} {round_} {avg} {execs / wall}\n")
PY
}

echo "target $target, ${seconds}s per run, $rounds rounds ($mode), seed 1, empty corpus each run"
for round in $(seq 1 "$rounds"); do
    if [ "$mode" = paired ]; then
        by_hand "$work/hand-$round.err" &
        through_runner "$work/runner-$round.err"
        wait
        order="hand runner"
    else
        if [ $((round % 2)) -eq 1 ]; then order="hand runner"; else order="runner hand"; fi
        for who in $order; do
            if [ "$who" = hand ]; then by_hand "$work/hand-$round.err"; else through_runner "$work/runner-$round.err"; fi
        done
    fi
    for who in $order; do report "$who" "$round"; done
done

python3 - "$work/figures" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
by = {(r[0], r[1]): r for r in rows}
rounds = sorted({r[1] for r in rows}, key=int)
for column, name in ((2, "libFuzzer exec/s"), (3, "executions / wall s")):
    ratios = [float(by["runner", k][column]) / float(by["hand", k][column]) for k in rounds]
    hand = statistics.median(float(by["hand", k][column]) for k in rounds)
    runner = statistics.median(float(by["runner", k][column]) for k in rounds)
    print(f"{name:>20}: median by hand {hand:9.0f}, through runner {runner:9.0f}; "
          f"runner/hand per round {' '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.3f}")
PY
