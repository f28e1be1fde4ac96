#!/usr/bin/env bash
# The execution kernel's speed on a real crate (the published `bytes` 1.11.1, fetched from
# crates.io), each runner stage paired in one run with the plain commands a person would type:
#   sanitizers  runner sanitizers (address only) vs `cargo test` with the same flags, both
#               from a clean target dir (build included)             target ratio <= 1.3
#   valgrind    runner valgrind vs each test binary once under memcheck with runner's options,
#               both with the tests already built                        target ratio <= 1.3
#   miri        runner miri vs `cargo miri test` per target, one after another, warm builds
#                                                                        target ratio <= 0.6
# runner runs with --no-cache: this measures the kernel, not the result cache (that is
# bench/cache-speed.sh). runner balances shards with the durations of the previous run
# (`.runner/durations.json` in the crate). For miri, runner runs twice against the one
# by-hand figure: first with no durations at all (a first run: a fresh durations file), then
# balanced by the durations that first run measured (targets <= 0.75 and <= 0.5).
# Prints the figures and ratios side by side. Miri takes the longest (about 15 min per target
# and side on 2 cores); MIRI_TARGETS=host limits it to the host.
# Usage: bench/kernel-speed.sh [sanitizers] [valgrind] [miri]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(sanitizers valgrind miri)
channel=$(sed -n 's/^channel = "\(.*\)"/\1/p' pin/toolchain.toml)
host=$(rustc -vV | sed -n 's/^host: //p')
work=$repo/target/bench-crates

cargo build --release -q -p runner
runner=$repo/target/release/runner
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

crate=$("$repo/bench/fetch-bytes.sh")
out=$work/out
results=()
report() { results+=("$(printf '%-11s runner %7.1f s   by hand %7.1f s   ratio %.2f' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)")"); echo "${results[-1]}"; }

for stage in "${stages[@]}"; do
  case $stage in
  sanitizers)
    asan=(detect_leaks=1 fast_unwind_on_malloc=0 detect_stack_use_after_return=1 symbolize=1)
    rm -rf "$crate/target/runner-build/sanitizers-address" "$work/asan-by-hand"
    start=$(now)
    "$runner" sanitizers "$crate" -q --no-provision --no-cache --out "$out/sanitizers" >/dev/null 2>&1 || true
    with_runner=$(elapsed "$start")
    start=$(now)
    (cd "$crate" && RUSTFLAGS=-Zsanitizer=address RUSTDOCFLAGS=-Zsanitizer=address \
      ASAN_OPTIONS=$(IFS=:; echo "${asan[*]}") \
      cargo "+$channel" test -q --target "$host" --target-dir "$work/asan-by-hand" >/dev/null 2>&1) || true
    by_hand=$(elapsed "$start")
    report sanitizers "$with_runner" "$by_hand"
    ;;
  valgrind)
    # Build first (both sides then run warm), and list the executables for the hand side.
    "$runner" valgrind "$crate" -q --no-provision --no-cache --out "$out/valgrind-warm" -- __no_such_test__ >/dev/null 2>&1 || true
    executables=$(cd "$crate" && cargo "+$channel" test --no-run --message-format=json \
      --target-dir "$crate/target/runner-build/valgrind" 2>/dev/null |
      python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])')
    start=$(now)
    "$runner" valgrind "$crate" -q --no-provision --no-cache --out "$out/valgrind" >/dev/null 2>&1 || true
    with_runner=$(elapsed "$start")
    mkdir -p "$work/valgrind-by-hand"
    start=$(now)
    for exe in $executables; do
      (cd "$crate" && valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
        --track-origins=yes --num-callers=30 --track-fds=yes --xml=yes \
        "--xml-file=$work/valgrind-by-hand/$(basename "$exe").xml" "$exe" --test-threads=1 >/dev/null 2>&1) || true
    done
    by_hand=$(elapsed "$start")
    report valgrind "$with_runner" "$by_hand"
    ;;
  miri)
    targets=("$host" s390x-unknown-linux-gnu)
    config_targets='["host", "s390x-unknown-linux-gnu"]'
    if [ "${MIRI_TARGETS:-}" = host ]; then targets=("$host"); config_targets='["host"]'; fi
    grep -q 'metadata.runner.miri' "$crate/Cargo.toml" ||
      printf '\n[package.metadata.runner.miri]\ntargets = %s\n' "$config_targets" >>"$crate/Cargo.toml"
    sed -i "s/^targets = .*/targets = $config_targets/" "$crate/Cargo.toml"
    # Warm both sides' builds (runner's with a filter that matches no test).
    "$runner" miri "$crate" -q --no-provision --no-cache --out "$out/miri-warm" -- __no_such_test__ >/dev/null 2>&1 || true
    for target in "${targets[@]}"; do
      (cd "$crate" && cargo "+$channel" miri test -q --no-run --target "$target" --target-dir "$work/miri-by-hand" >/dev/null 2>&1) || true
    done
    # A durations file of this run's own: the first runner run finds it absent, the second
    # splits by what the first measured.
    durations=$work/miri-durations.json
    rm -f "$durations"
    start=$(now)
    "$runner" miri "$crate" -q --no-provision --no-cache --durations "$durations" --out "$out/miri-first" >/dev/null 2>&1 || true
    first_run=$(elapsed "$start")
    start=$(now)
    "$runner" miri "$crate" -q --no-provision --no-cache --durations "$durations" --out "$out/miri" >/dev/null 2>&1 || true
    with_runner=$(elapsed "$start")
    start=$(now)
    for target in "${targets[@]}"; do
      # --no-fail-fast: a failing binary must not make the hand side shorter by skipping the rest.
      (cd "$crate" && cargo "+$channel" miri test --no-fail-fast --target "$target" \
        --target-dir "$work/miri-by-hand" >"$work/miri-by-hand-$target.log" 2>&1) || true
    done
    by_hand=$(elapsed "$start")
    cat "$work"/miri-by-hand-*.log | sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' |
      awk '{p+=$1; f+=$2} END {printf "by hand: %d tests passed, %d failed\n", p, f}'
    report "miri first" "$first_run" "$by_hand"
    report "miri" "$with_runner" "$by_hand"
    ;;
  *) echo "unknown stage $stage (sanitizers, valgrind, miri)" >&2; exit 2 ;;
  esac
done
echo
echo "bytes 1.11.1 on $(nproc) cores:"
printf '%s\n' "${results[@]}"
for stage in "${stages[@]}"; do
  [ -f "$out/$stage/report.json" ] && python3 -c 'import json,sys
stage = json.load(open(sys.argv[1]))["stages"][0]
print("  %s: %s, counts %s" % (stage["stage"], stage["status"], stage["counts"]))' "$out/$stage/report.json"
done
