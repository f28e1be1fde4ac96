#!/usr/bin/env bash
# The sweep: `runner all` on popular published crates as they ship on crates.io (the .crate
# tarball, tests included), to check runner's verdicts on real code.
#
# What it does, per crate:
#   - fetches the pinned version (sha256 checked) into target/sweep/crates/NAME-VERSION, once:
#     re-runs reuse it (and the build folders under it). The copy gets a `[workspace]` of its
#     own (it lives inside this repository's workspace) and runner config limiting Miri to the
#     host target, for time; nothing else of the crate is changed.
#   - `crossbeam` is one workspace assembled from published crates: crossbeam-utils,
#     crossbeam-epoch and crossbeam-queue as members of a generated `[workspace]`, epoch's and
#     queue's dependency on crossbeam-utils turned into a path dependency on the member.
#   - `crossbeam-ci` is the same workspace configured as crossbeam's own CI runs Miri, with
#     per-package settings: utils and queue under `-Zmiri-strict-provenance`, epoch without
#     borrow tracking and with `-Zmiri-ignore-leaks`; the sweep runs `runner miri` on it.
#   - runs `runner all CRATE --no-cache --out target/sweep/out/CRATE` (one run at a time,
#     under the lock below); a run that fails, or even writes no report, is recorded and the
#     sweep goes on. runner's own output goes to target/sweep/logs/CRATE.log.
#
# The crates cover: `should_panic` tests (slab, arrayvec, either, smallvec, bytes), doctests
# that take over 60 s under MemorySanitizer (either, slab), a test spawning 1,000 threads
# (once_cell's `get_or_init_stress`), self-referential dev-dependencies (itoa: criterion ->
# serde_json -> itoa; bumpalo), criterion benchmarks (itoa, string-interner, whose `setup` bench
# target is a helper module built with libtest's harness), benchmarks of another harness (arrayvec),
# and a multi-crate workspace.
#
# Cost on 2 cores with RUST_BACKTRACE=1 (first sweep): scopeguard 4 min, itoa 6, either 9,
# once_cell 14, crossbeam 31, string-interner 48 (its four `encode_var_usize_4_bytes` tests
# loop over up to 134 M integers and reach the 5-min per-test limit under MemorySanitizer and
# valgrind: docs/sweep-findings.md, N2); MemorySanitizer is most of the rest while panicking
# tests are slow under it. Run a subset by naming crates.
#
# Usage: bench/sweep.sh [CRATE...]      (default: every crate below; `crossbeam` for the workspace,
#                                        `crossbeam-ci` for it under crossbeam's CI settings)
#        bench/sweep.sh --table [CRATE...]   only print the table of the reports already there
#   RUNNER=/path/to/runner   the binary to test (default: `cargo build --release -p runner` of
#                            this checkout); it is copied to target/sweep/bin/ first, so a
#                            rebuild during the sweep does not change what runs
#   SWEEP_LOCK=FILE          every heavy command (cargo build, each runner run) holds this
#                            flock (default /tmp/runner-heavy.lock, so builds on a shared machine
#                            take turns); empty: no lock
#   SWEEP_ARGS="--stages miri,valgrind"   extra arguments for every `runner all`, split on spaces
#
# Prints, after each crate and at the end for all of them, a table: crate, stage, verdict
# (PASS/FAIL/ERROR/SKIPPED), tests run, findings, seconds (from each report.json), with the
# reason of an ERROR or SKIPPED and runner's exit code per crate. The table is also written to
# target/sweep/table.txt. Exit code 0 when every run wrote a report, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$repo/target/sweep
lock=${SWEEP_LOCK-/tmp/runner-heavy.lock}

# name version sha256 (of the .crate file, as in the crates.io index)
crates=(
  "itoa 1.0.19 3bd1574e617a9a6c1f8f8181bd7e841e1f20e4277607ef28945765188d6284d4"
  "bumpalo 3.20.4 87a0cf66fd1eb2fb7b822cb78370d82303750809bc6ba855f3f58e517d3238db"
  "slab 0.4.12 0c790de23124f9ab44544d7ac05d60440adc586479ce501c1d6d7da3cd8c9cf5"
  "once_cell 1.21.4 9f7c3e4beb33f85d45ae3e3a1792185706c8e16d043238c593331cc7cd313b50"
  "smallvec 1.16.6 3244542535d5de959d90ec55d1b5ff0fd2bb7b1310223907d5f11932847f7b59"
  "arrayvec 0.7.8 d3fb67a6e08acf24fdeccbac2cb6ac4305825bd1f117462e0e6f2f193345ad56"
  "bytes 1.12.2 776dfebd015e2d8732c684a2c71003674ccb49457b539b9e82151ba38e96dd7c"
  "scopeguard 1.2.0 94143f37725109f92c262ed2cf5e59bce7498c01bcc1502d7b9afe439a4e9f49"
  "thread_local 1.1.10 1ad99c4c6d32803332c548b1af0540b357b3f5fc0be8f6c6bfe8b2e6ae784070"
  "either 1.19.0 0e9c71c2167ca323c882b99918929403426e2373ea17242ff5653e0d5e1058be"
  "beef 0.5.2 3a8241f3ebb85c056b509d4327ad0358fbbba6ffb340bf388f26350aeda225b1"
  "string-interner 0.20.0 ad3df9b59e2eded8d825c7c4363ad339a20fb6bc0b9a4778560f518f59910b15"
)
# Left out: typed-arena 2.0.2 (the newest), whose tests no longer compile on Rust 1.89 and
# later (`dangerous_implicit_autorefs` is deny-by-default; src/test.rs:170 and the doctest of
# `Arena::alloc_uninitialized`), so every stage but bench could only say ERROR. Its bench uses
# criterion 0.3, the case of docs/sweep-findings.md N5: worth a crate again once that is fixed.
# The workspace's members, in dependency order.
crossbeam=(
  "crossbeam-utils 0.8.23 a31eee39dddec8330830986fcd7625edb5a24ec90ea038215273bbc3adb08ac6"
  "crossbeam-epoch 0.9.21 dc74980687109a3b14c72fd458107bf0baa1da1a1a805e178d15501ba9b86d9d"
  "crossbeam-queue 0.3.14 03e8bd762f7479489c70ed6c768ddca99d7296857de437a68dcb2a94365b3fae"
)

heavy() { # the command, under the lock when there is one
  if [ -n "$lock" ]; then flock "$lock" "$@"; else "$@"; fi
}

entry() { # name -> "name version sha256" of the single crates, empty when not one of them
  local line
  for line in "${crates[@]}"; do
    if [ "${line%% *}" = "$1" ]; then
      echo "$line"
      return
    fi
  done
}

fetch() { # name version sha256 dest: the published .crate unpacked at dest (once)
  local name=$1 version=$2 sum=$3 dest=$4
  [ -f "$dest/Cargo.toml" ] && return
  local tmp
  tmp=$(mktemp -d "$work/fetch.XXXXXX")
  curl -sSfL -o "$tmp/crate.tar.gz" "https://static.crates.io/crates/$name/$name-$version.crate"
  echo "$sum  $tmp/crate.tar.gz" | sha256sum -c --quiet -
  tar xzf "$tmp/crate.tar.gz" -C "$tmp"
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest"
  mv "$tmp/$name-$version" "$dest"
  rm -rf "$tmp"
}

prepare_single() { # name -> the crate's folder, ready for runner
  local name version sum dir
  read -r name version sum <<<"$(entry "$1")"
  dir=$work/crates/$name-$version
  if [ ! -f "$dir/.sweep-prepared" ]; then
    fetch "$name" "$version" "$sum" "$dir"
    {
      printf '\n# Added by bench/sweep.sh: a workspace of its own; Miri on the host only, for time.\n'
      grep -q '^\[workspace\]' "$dir/Cargo.toml" || printf '[workspace]\n'
      printf '[package.metadata.runner.miri]\ntargets = ["host"]\n'
    } >>"$dir/Cargo.toml"
    : >"$dir/.sweep-prepared"
  fi
  echo "$dir"
}

prepare_crossbeam() { # [ci] -> the assembled workspace's folder (with crossbeam's CI settings)
  local variant=${1:-} dir=$work/crates/crossbeam-workspace line name version sum members=()
  [ -z "$variant" ] || dir=$work/crates/crossbeam-$variant-workspace
  if [ ! -f "$dir/.sweep-prepared" ]; then
    for line in "${crossbeam[@]}"; do
      read -r name version sum <<<"$line"
      fetch "$name" "$version" "$sum" "$dir/$name"
      members+=("\"$name\"")
      # The published manifest names crossbeam-utils as `[dependencies.crossbeam-utils]` with a
      # version: add the member's path beside it (the version still has to match, and does).
      if [ "$name" != crossbeam-utils ]; then
        sed -i 's|^\[dependencies\.crossbeam-utils\]$|&\npath = "../crossbeam-utils"|' "$dir/$name/Cargo.toml"
        grep -q '^path = "../crossbeam-utils"$' "$dir/$name/Cargo.toml"
      fi
      if [ "$variant" = ci ]; then
        # crossbeam's CI: epoch's known Stacked Borrows violations (crossbeam#545) and leaks
        # are accepted there; the others run under strict provenance.
        if [ "$name" = crossbeam-epoch ]; then
          printf '\n[package.metadata.runner.miri]\nborrow-model = "none"\nflags = ["-Zmiri-ignore-leaks"]\n' >>"$dir/$name/Cargo.toml"
        else
          printf '\n[package.metadata.runner.miri]\nflags = ["-Zmiri-strict-provenance"]\n' >>"$dir/$name/Cargo.toml"
        fi
      fi
    done
    local IFS=,
    printf '# Generated by bench/sweep.sh from the published crates.\n[workspace]\nresolver = "2"\nmembers = [%s]\n\n# Miri on the host only, for time.\n[workspace.metadata.runner.miri]\ntargets = ["host"]\n' \
      "${members[*]}" >"$dir/Cargo.toml"
    : >"$dir/.sweep-prepared"
  fi
  echo "$dir"
}

table() { # report folders... -> the table on stdout
  python3 - "$work" "$@" <<'PY'
import json, os, sys
work, names = sys.argv[1], sys.argv[2:]
rows = [("crate", "stage", "verdict", "tests", "findings", "seconds", "note")]
for name in names:
    out = os.path.join(work, "out", name)
    run = {}
    try:
        run = json.load(open(os.path.join(work, "runs", name + ".json")))
    except (OSError, ValueError):
        pass
    exit_note = f"runner exit {run.get('exit', '?')}, {run.get('seconds', '?')} s wall"
    try:
        report = json.load(open(os.path.join(out, "report.json")))
    except (OSError, ValueError) as e:
        rows.append((name, "-", "NO REPORT", "-", "-", "-", f"{exit_note}; {type(e).__name__}"))
        continue
    partial = " (partial report)" if report.get("partial") else ""
    gate = report["gate"]
    verdict = "NOT EVALUATED" if gate.get("not_evaluated") else ("PASS" if gate["passed"] else "FAIL")
    rows.append((name, "(run)", "gate " + verdict,
                 "", str(sum(len(s["findings"]) for s in report["stages"])), "",
                 exit_note + partial))
    for stage in report["stages"]:
        counts = stage.get("counts", {})
        # Tests run; for bench the benchmarks measured, for fuzz the targets fuzzed.
        tests = counts.get("tests_run", counts.get("benchmarks", counts.get("targets")))
        if tests is None:
            tests = len(stage.get("tests", [])) or "-"
        note = ""
        if stage["status"] in ("ERROR", "SKIPPED") or (stage["status"] == "FAIL" and stage.get("reason")):
            note = " ".join((stage.get("reason") or "").split())
            note = note if len(note) <= 110 else note[:107] + "..."
        rows.append((name, stage["stage"], stage["status"], str(tests), str(len(stage["findings"])),
                     f"{stage['duration_ms'] / 1000:.0f}", note))
widths = [max(len(r[i]) for r in rows) for i in range(6)]
for r in rows:
    print("  ".join(c.ljust(w) if i in (0, 1, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(r[:6], widths))), r[6])
PY
}

# Which crates.
all_names=()
for line in "${crates[@]}"; do all_names+=("${line%% *}"); done
all_names+=(crossbeam crossbeam-ci)
table_only=false
if [ "${1:-}" = --table ]; then
  table_only=true
  shift
fi
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${all_names[@]}")
for name in "${names[@]}"; do
  if ! $table_only && [ "${name%-ci}" != crossbeam ] && [ -z "$(entry "$name")" ]; then
    echo "sweep: unknown crate '$name' (known: ${all_names[*]})" >&2
    exit 2
  fi
done

if $table_only; then
  table "${names[@]}"
  exit 0
fi
mkdir -p "$work/bin" "$work/out" "$work/logs" "$work/runs" "$work/crates"
if [ -z "${RUNNER:-}" ]; then
  heavy cargo build --release -q -p runner
  RUNNER=$repo/target/release/runner
fi
runner=$work/bin/runner.$$
cp "$RUNNER" "$runner"
trap 'rm -f "$runner"' EXIT
extra=()
if [ -n "${SWEEP_ARGS:-}" ]; then read -r -a extra <<<"$SWEEP_ARGS"; fi
echo "runner: $RUNNER ($("$runner" --version))"

ok=0
for name in "${names[@]}"; do
  command=all
  case $name in
    crossbeam) dir=$(prepare_crossbeam) ;;
    crossbeam-ci) dir=$(prepare_crossbeam ci) command=miri ;;
    *) dir=$(prepare_single "$name") ;;
  esac
  out=$work/out/$name
  rm -rf "$out"
  echo "== $name: runner $command $dir"
  start=$(date +%s)
  status=0
  heavy "$runner" "$command" "$dir" --no-cache --out "$out" "${extra[@]}" >"$work/logs/$name.log" 2>&1 || status=$?
  seconds=$(($(date +%s) - start))
  printf '{"exit": %d, "seconds": %d}\n' "$status" "$seconds" >"$work/runs/$name.json"
  [ -f "$out/report.json" ] || ok=1
  table "$name" | tail -n +2
done

echo
table "${names[@]}" | tee "$work/table.txt"
exit "$ok"
