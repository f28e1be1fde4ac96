#!/usr/bin/env bash
# The published `bytes` 1.11.1 as a workspace of its own, for the benchmarks: fetched from
# crates.io once into target/bench-crates/, with runner's config for them (AddressSanitizer
# only). Prints the crate's folder.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$PWD/target/bench-crates
crate=$work/bytes-1.11.1
if [ ! -f "$crate/Cargo.toml" ]; then
  mkdir -p "$work/fetch/src"
  printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nbytes = "=1.11.1"\n[workspace]\n' >"$work/fetch/Cargo.toml"
  : >"$work/fetch/src/lib.rs"
  cargo fetch -q --manifest-path "$work/fetch/Cargo.toml" >&2
  source=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name bytes-1.11.1 | head -1)
  cp -r "$source" "$crate"
  chmod -R u+w "$crate"
  grep -q '^\[workspace\]' "$crate/Cargo.toml" || printf '\n[workspace]\n' >>"$crate/Cargo.toml"
  printf '\n[package.metadata.runner.sanitizers]\nenabled = ["address"]\n' >>"$crate/Cargo.toml"
fi
echo "$crate"
