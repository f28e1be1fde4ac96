#!/usr/bin/env bash
# The README's "On a fresh machine" promise, checked: a throwaway container made from the
# repository's base image plus rustup and a C/C++ compiler only (no valgrind, llvm, qemu, cross
# compiler, nix or git), a clean clone of HEAD in it, and the README's two commands run there
# exactly as the README writes them, in its order: the one that analyses the demo must write
# the demo's report and exit 1 (the demo has bugs), the other (`./test`) must exit 0. Prints
# each command's wall time and the total.
# Usage: docker/fresh-machine.sh   (needs a Docker engine, network access, and Debian's
# debootstrap when the base image is not there yet). Takes tens of minutes: the container
# installs every tool from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
image=runner:fresh-machine

# The README's two commands: the lines of its first code block after "## On a fresh machine",
# without their trailing comments.
mapfile -t commands < <(awk '
  /^## On a fresh machine/ { section = 1; next }
  section && /^```/ { if (block) exit; block = 1; next }
  block { sub(/[ \t]+#.*$/, ""); if ($0 != "") print }
' README.md)
if [ ${#commands[@]} != 2 ]; then
  echo "expected two commands in the README's fresh-machine block, found ${#commands[@]}" >&2
  exit 1
fi
printf 'README commands:\n'
printf '  %s\n' "${commands[@]}"

docker/base-image.sh

context=$(mktemp -d)
cleanup() {
  rm -rf "$context"
  docker image rm -f "$image" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# A clean clone, checked out at this worktree's HEAD: committed files only, nothing built.
git clone -q --no-hardlinks "$PWD" "$context/runner"
git -C "$context/runner" checkout -q --detach "$(git rev-parse HEAD)"
# Trust the same extra CAs as this machine (a TLS-intercepting proxy would break downloads).
mkdir "$context/ca-certificates"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$context/ca-certificates/"
fi

# rustup comes from rustup's standalone installer (Debian bookworm does not package rustup),
# with the stable toolchain it installs by default. The C/C++ compiler is gcc and g++:
# cargo-fuzz's libFuzzer is C++.
cat >"$context/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl gcc g++ libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY ca-certificates/ /usr/local/share/ca-certificates/extra/
RUN update-ca-certificates
RUN curl --proto '=https' --tlsv1.2 -sSf -o /tmp/rustup-init \
      "https://static.rust-lang.org/rustup/dist/$(uname -m)-unknown-linux-gnu/rustup-init" \
 && chmod +x /tmp/rustup-init \
 && /tmp/rustup-init -y --profile minimal \
 && rm /tmp/rustup-init
ENV PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY runner/ /home/user/runner/
WORKDIR /home/user/runner
EOF
build_started=$(date +%s)
docker build -q -t "$image" "$context" >/dev/null
echo "built $image in $(( $(date +%s) - build_started )) s"

# Inside: each README command as written, in the README's order, timed. The one that analyses
# the demo must exit 1 and write its report; any other must exit 0. SYS_PTRACE lets
# LeakSanitizer work in the container; nice keeps a shared machine usable meanwhile.
set +e
docker run --rm --cap-add SYS_PTRACE "$image" nice -n 19 bash -c '
  report=demo/target/runner/report.md
  for command in "$@"; do
    case $command in
      *" all demo"*) expected=1 ;;
      *) expected=0 ;;
    esac
    command_started=$(date +%s)
    bash -c "$command"
    code=$?
    echo "== \`$command\` exited $code after $(( $(date +%s) - command_started )) s"
    [ "$code" = "$expected" ] || { echo "\`$command\` exited $code, expected $expected"; exit 1; }
    if [ "$expected" = 1 ] && [ ! -s "$report" ]; then
      echo "\`$command\` wrote no $report"
      exit 1
    fi
  done
' fresh-machine "${commands[@]}"
code=$?
set -e
elapsed=$(( $(date +%s) - started ))
if [ "$code" = 0 ]; then
  echo "fresh machine: PASS in $(( elapsed / 60 )) min $(( elapsed % 60 )) s"
else
  echo "fresh machine: FAIL (exit $code) after $(( elapsed / 60 )) min $(( elapsed % 60 )) s"
  exit 1
fi
