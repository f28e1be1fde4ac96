#!/usr/bin/env bash
# The result cache on a real crate (the published `bytes` 1.11.1, bench/fetch-bytes.sh):
#   cold   `runner all` with an empty result cache (builds already made by a warm-up run
#          that matches no test, so both sides start from the same built state)
#   warm   the same command again with no change               target warm <= 0.2 x cold
#   edit   one line appended to one integration test file (tests/test_chain.rs, a new empty
#          test): only that harness's tests run again (the report's cache counts show it); the
#          file is restored afterwards. (A comment alone changes Miri's key, which reads the
#          sources, but not the native binaries, which come out byte for byte the same.)
# Prints cold, warm and warm/cold side by side, per stage and in total, and the edit's time.
# Stages: miri, sanitizers (address), valgrind and cross unless STAGES=a,b says otherwise
# (fuzz, bench and soak never use the cache; coverage does not either). MIRI_TARGETS=host
# limits Miri to the host (default: host and s390x).
# Usage: bench/cache-speed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
stages=${STAGES:-miri,sanitizers,valgrind,cross}
work=$repo/target/bench-crates
out=$work/out-cache

cargo build --release -q -p runner
runner=$repo/target/release/runner
crate=$("$repo/bench/fetch-bytes.sh")
if [ "${MIRI_TARGETS:-}" = host ]; then
  grep -q 'metadata.runner.miri' "$crate/Cargo.toml" ||
    printf '\n[package.metadata.runner.miri]\ntargets = ["host"]\n' >>"$crate/Cargo.toml"
fi
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
analyse() { # name, extra args...
  local name=$1
  shift
  "$runner" all "$crate" -q --no-provision --stages "$stages" --out "$out/$name" "$@" >/dev/null 2>&1 || true
}

echo "warm-up: building every stage's tests (no test matches)"
analyse build --no-cache -- __no_such_test__
"$runner" cache clear "$crate"

start=$(now); analyse cold; cold=$(elapsed "$start")
start=$(now); analyse warm; warm=$(elapsed "$start")

edited=$crate/tests/test_chain.rs
cp "$edited" "$work/test_chain.rs.orig"
echo "#[test] fn one_more_line() {}" >>"$edited"
start=$(now); analyse edit; edit=$(elapsed "$start")
cp "$work/test_chain.rs.orig" "$edited"

python3 - "$out" "$cold" "$warm" "$edit" <<'PY'
import json, sys
out, cold, warm, edit = sys.argv[1], *map(float, sys.argv[2:])
def stages(name):
    report = json.load(open(f"{out}/{name}/report.json"))
    return {s["stage"]: s for s in report["stages"]}
runs = {name: stages(name) for name in ("cold", "warm", "edit")}
print(f"\nbytes 1.11.1, runner all --stages ...:")
print(f"{'stage':<11} {'cold':>9} {'warm':>9} {'warm/cold':>9} {'edit':>9}  cached tests (warm, edit) of run")
for stage, c in runs["cold"].items():
    w, e = runs["warm"][stage], runs["edit"][stage]
    cached = lambda s: (s.get("cache") or {}).get("tests", 0)
    ratio = w["duration_ms"] / max(c["duration_ms"], 1)
    print(f"{stage:<11} {c['duration_ms']/1000:8.1f}s {w['duration_ms']/1000:8.1f}s {ratio:9.2f} "
          f"{e['duration_ms']/1000:8.1f}s  {cached(w)}, {cached(e)} of {len(c.get('tests', []))}"
          f"   status {c['status']}/{w['status']}/{e['status']}")
    same = [(f["fingerprint"], f.get("target")) for f in c["findings"]] == \
           [(f["fingerprint"], f.get("target")) for f in w["findings"]]
    if not same or c["counts"] != w["counts"]:
        print(f"  {stage}: findings or counts differ between cold and warm!")
print(f"{'total':<11} {cold:8.1f}s {warm:8.1f}s {warm/cold:9.2f} {edit:8.1f}s   (wall time of the whole command)")
PY
