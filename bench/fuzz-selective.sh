#!/usr/bin/env bash
# Selective coverage instrumentation (config `fuzz.instrument`) against full instrumentation:
# paired runs of `cargo fuzz run`, one build each way (the selective one through runner as
# RUSTC_WRAPPER, exactly as the fuzz stage builds it), the same seed for both sides of a pair
# and the order alternating between rounds. Per round it prints:
#   - the fixture's chunk_tags crash (a 4-byte tag): seconds and executions until the crash;
#   - the fixture's checksum target (no crash): executions per second over SECONDS;
#   - the demo's frames crash (AddressSanitizer, first input): seconds until the crash.
# then the medians. Counters in each build are read from libFuzzer's "Loaded 1 modules" line.
#
# Usage: bench/fuzz-selective.sh [ROUNDS=5] [SECONDS=10]
set -euo pipefail

rounds=${1:-5}
seconds=${2:-10}
repo=$(cd "$(dirname "$0")/.." && pwd)
channel=$(sed -n 's/^channel = "\(.*\)"/\1/p' "$repo/pin/toolchain.toml")
tools="${RUNNER_CACHE_DIR:-$HOME/.cache/runner}/tools/bin"
export PATH="$tools:$PATH"
# Shared with the end-to-end tests: libFuzzer itself is built once per machine and variant.
builds="$repo/fixtures/fuzz-bugs/target/runner-build/bench-selective"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$repo/fixtures/fuzz-bugs" "$work/fixture"
cp -r "$repo/demo" "$work/demo"
rm -rf "$work"/{fixture,demo}/{target,fuzz/corpus,fuzz/artifacts}

(cd "$repo" && cargo build --quiet -p runner 2>/dev/null)
runner="$repo/target/debug/runner"

# cargo fuzz with the variant's build folder and, for `selective`, runner as the wrapper.
fuzz() { # $1 = variant, $2 = workspace, $3 = crates kept, rest = cargo fuzz arguments
    local variant=$1 ws=$2 crates=$3
    shift 3
    local sub=$1
    shift
    local env=()
    [ "$variant" = selective ] && env=(RUSTC_WRAPPER="$runner" RUNNER_SANCOV_CRATES="$crates")
    env "${env[@]}" cargo "+$channel" fuzz "$sub" --fuzz-dir "$ws/fuzz" \
        --target-dir "$builds/$(basename "$ws")-$variant" --sanitizer address "$@"
}

# One libFuzzer run from an empty corpus; prints "seconds executions exec/s counters".
measure() { # $1 = variant, $2 = workspace, $3 = crates, $4 = target, $5 = seed, rest = flags
    local variant=$1 ws=$2 crates=$3 target=$4 seed=$5
    shift 5
    local corpus="$work/corpus" log="$work/log"
    rm -rf "$corpus" && mkdir -p "$corpus"
    local start end
    start=$(date +%s.%N)
    fuzz "$variant" "$ws" "$crates" run "$target" "$corpus" -- -seed="$seed" \
        -print_final_stats=1 -artifact_prefix="$work/" "$@" 2>"$log" >/dev/null || true
    end=$(date +%s.%N)
    local execs speed counters
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    counters=$(sed -n 's/.*Loaded 1 modules *(\([0-9]*\) inline.*/\1/p' "$log" | head -1)
    python3 -c "print(f'{$end - $start:.2f} ${execs:-0} ${speed:-0} ${counters:-0}')"
}

# A build that fails is named with its last lines, and its column stays empty.
demo=yes
for variant in full selective; do
    fuzz "$variant" "$work/fixture" fuzz-bugs build >"$work/build.log" 2>&1 ||
        { tail -5 "$work/build.log"; exit 1; }
    if ! fuzz "$variant" "$work/demo" demo build >"$work/build.log" 2>&1; then
        echo "the demo's $variant build failed; measuring the fixture only:"
        tail -5 "$work/build.log"
        demo=no
    fi
done

printf '%-6s %-10s %22s %22s %18s\n' round variant "chunk_tags s/execs" "checksum exec/s" "demo crash s"
results="$work/results"
: > "$results"
for round in $(seq 1 "$rounds"); do
    order=(full selective)
    [ $((round % 2)) -eq 0 ] && order=(selective full)
    for variant in "${order[@]}"; do
        read -r crash_s crash_execs _ counters < <(measure "$variant" "$work/fixture" fuzz-bugs chunk_tags "$round" -max_total_time=300)
        read -r _ _ speed _ < <(measure "$variant" "$work/fixture" fuzz-bugs checksum "$round" -max_total_time="$seconds")
        demo_s=0 demo_counters=0
        [ "$demo" = yes ] &&
            read -r demo_s _ _ demo_counters < <(measure "$variant" "$work/demo" demo frames "$round" -max_total_time=60)
        printf '%-6s %-10s %12s/%-9s %22s %18s\n' "$round" "$variant" "$crash_s" "$crash_execs" "$speed" "$demo_s"
        echo "$variant $crash_s $crash_execs $speed $demo_s $counters $demo_counters" >> "$results"
    done
done

python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
for variant in ("full", "selective"):
    mine = [r for r in rows if r[0] == variant]
    med = lambda i: statistics.median(float(r[i]) for r in mine)
    print(f"median {variant:9}: chunk_tags crash {med(1):.2f} s / {med(2):.0f} execs, "
          f"checksum {med(3):.0f} exec/s, demo crash {med(4):.2f} s; "
          f"counters: fixture chunk_tags {mine[0][5]}, demo frames {mine[0][6]}")
EOF
