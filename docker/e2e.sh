#!/usr/bin/env bash
# The Docker path end to end: make the base image locally, build the image from the real
# Dockerfile, analyse the demo inside it (no network, as an unprivileged user, both with plain
# `docker run` and with `runner --in docker`), and check the findings equal a host run's and
# that no file in the workspace ends up owned by someone else.
# Usage: docker/e2e.sh   (from anywhere; needs a Docker engine and Debian's debootstrap)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
image=runner:e2e
uid=4242

docker/base-image.sh
# Trust the same extra CAs as this machine (a TLS-intercepting proxy would break the build).
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt docker/ca-certificates/
fi
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
docker build -q --build-arg STAGES=miri --build-arg "REVISION=$revision" -t "$image" . >/dev/null
echo "built $image"

cargo build -q -p runner
runner=$repo/target/debug/runner
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. On the host.
"$runner" miri demo -q --out "$work/host" >/dev/null 2>&1 || true

# 2. Plain docker run, no network, as an unprivileged user that owns the copy.
cp -r demo "$work/demo"
rm -rf "$work/demo/target" "$work/demo/.runner"
chown -R "$uid:$uid" "$work/demo"
set +e
docker run --rm --network none --user "$uid:$uid" -v "$work/demo:/src" "$image" \
  miri -q --offline --out /src/target/docker-report
code=$?
set -e
[ "$code" = 1 ] || { echo "container run exited $code, expected 1 (the demo has bugs)"; exit 1; }
strangers=$(find "$work/demo" ! -user "$uid" | head -5)
[ -z "$strangers" ] || { echo "files not owned by $uid: $strangers"; exit 1; }

# 3. runner --in docker from the host re-runs the same command inside the image.
cp -r demo "$work/demo-in"
rm -rf "$work/demo-in/target" "$work/demo-in/.runner"
set +e
RUNNER_IMAGE=$image "$runner" miri "$work/demo-in" --in docker -q --out "$work/in-docker"
code=$?
set -e
[ "$code" = 1 ] || { echo "runner --in docker exited $code, expected 1"; exit 1; }

python3 - "$work/host/report.json" "$work/demo/target/docker-report/report.json" "$work/in-docker/report.json" <<'PY'
import json, sys

def findings(path):
    report = json.load(open(path))
    stage = report["stages"][0]
    assert stage["status"] == "FAIL", (path, stage["status"], stage.get("reason"))
    return report, sorted(
        (f["target"], f["test"], f["kind"], f["location"]["file"], f["location"]["line"])
        for f in stage["findings"]
    )

host_report, host = findings(sys.argv[1])
for path in sys.argv[2:]:
    report, inside = findings(path)
    assert inside == host, f"{path}: {inside} != {host}"
    env = report["environment"]
    assert env["mode"] == "docker", env
    assert env["provenance"] and "docker image" in env["provenance"], env
    assert env["rustc"] == host_report["environment"]["rustc"], (env["rustc"], host_report["environment"]["rustc"])
print(f"same {len(host)} findings on the host, with docker run and with --in docker")
PY
