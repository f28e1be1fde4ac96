#!/usr/bin/env bash
# Coverage split across N slices against one run of every test, side by side (default: N = 3
# on fixtures/coverage-split). Runs `runner coverage` once on the workspace, then
# `runner coverage --partition K/N` for K = 1..N, each in a copy of the workspace of its own
# (its own path and build, as on N CI machines), then `runner merge`. Prints per metric the
# single run's and the merged count with each slice's own, whether they are equal, the LCOV
# records compared, and each run's wall time (builds included: each copy builds once).
# Usage: bench/coverage-split.sh [N] [WORKSPACE]   (RUNNER=path uses that runner binary)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
n=${1:-3}
crate=$(cd "${2:-$repo/fixtures/coverage-split}" && pwd)
work=$repo/target/bench-coverage-split
rm -rf "$work"
mkdir -p "$work"
if [ -z "${RUNNER:-}" ]; then
  cargo build --release -q -p runner
  RUNNER=$repo/target/release/runner
fi

seconds() { date +%s.%N; }
elapsed() { echo "$(seconds) - $1" | bc -l; }

start=$(seconds)
"$RUNNER" coverage "$crate" -q --out "$work/single" >/dev/null 2>&1 || true
times=("$(elapsed "$start")")
slices=()
for k in $(seq 1 "$n"); do
  copy=$work/machine-$k
  mkdir -p "$copy"
  # The workspace without its build output, as a fresh checkout.
  tar -C "$crate" --exclude=./target --exclude=./.runner -cf - . | tar -C "$copy" -xf -
  start=$(seconds)
  "$RUNNER" coverage "$copy" -q --partition "$k/$n" --out "$work/slice-$k" >/dev/null 2>&1 || true
  times+=("$(elapsed "$start")")
  slices+=("$work/slice-$k")
done
"$RUNNER" merge "${slices[@]}" -q --out "$work/merged" >/dev/null 2>&1 || true

python3 - "$work" "$n" "${times[@]}" <<'PY'
import json, sys
work, n, times = sys.argv[1], int(sys.argv[2]), [float(t) for t in sys.argv[3:]]
def coverage(folder):
    report = json.load(open(f"{work}/{folder}/report.json"))
    return next(s for s in report["stages"] if s["stage"] == "coverage")
single, merged = coverage("single"), coverage("merged")
slices = [coverage(f"slice-{k}") for k in range(1, n + 1)]
keys = ["lines", "lines_covered", "branches", "branches_covered", "functions",
        "functions_covered", "regions", "regions_covered", "tests_run"]
head = "".join(f"{'slice ' + str(k):>10}" for k in range(1, n + 1))
print(f"{'count':<18}{'single':>10}{'merged':>10}{head}  equal")
for key in keys:
    row = "".join(f"{s['counts'].get(key, 0):>10}" for s in slices)
    a, b = single["counts"].get(key), merged["counts"].get(key)
    print(f"{key:<18}{a!s:>10}{b!s:>10}{row}  {'yes' if a == b else 'NO'}")
def findings(stage):
    return sorted((f["kind"], f["message"]) for f in stage["findings"])
print(f"findings: single {len(single['findings'])}, merged {len(merged['findings'])}, "
      f"equal: {'yes' if findings(single) == findings(merged) else 'NO'}; "
      f"status single {single['status']}, merged {merged['status']}")
def lcov(folder):
    """Per file: line → count, branch side → count ("-" never evaluated), summary records."""
    files, current = {}, None
    for line in open(f"{work}/{folder}/coverage/lcov.info").read().splitlines():
        tag, _, value = line.partition(":")
        if tag == "SF":
            current = files.setdefault(value.rsplit("/src/", 1)[-1], ({}, {}, {}))
        elif tag == "DA":
            number, count = value.split(",")[:2]
            current[0][number] = int(count)
        elif tag == "BRDA":
            *side, taken = value.split(",")
            current[1][tuple(side)] = taken
        elif tag in ("LF", "LH", "BRF", "BRH", "FNF", "FNH"):
            current[2][tag] = value
    return files
a, b = lcov("single"), lcov("merged")
covered = lambda counts: {k: (v if isinstance(v, int) else v != "-" and int(v)) > 0 for k, v in counts.items()}
same_shape = a.keys() == b.keys() and all(
    covered(a[f][0]) == covered(b[f][0]) and covered(a[f][1]) == covered(b[f][1]) and a[f][2] == b[f][2]
    for f in a)
lines = sum(len(a[f][0]) for f in a)
differ = sum(1 for f in a for k, v in a[f][0].items() if b[f][0].get(k) != v)
print(f"LCOV: same files, lines, covered lines, taken branch sides and summary records: "
      f"{'yes' if same_shape else 'NO'}; execution counts differ on {differ} of {lines} lines")
print(f"wall time: single {times[0]:.1f} s; slices " +
      ", ".join(f"{t:.1f}" for t in times[1:]) + " s (each with its own build)")
PY
