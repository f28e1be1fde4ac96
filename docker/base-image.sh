#!/usr/bin/env bash
# Makes the Dockerfile's base image locally, for machines that reach Debian's package mirror but
# no image registry: a minimal bookworm tree from debootstrap, imported as debian:bookworm-slim.
# Does nothing when the image already exists. Usage: docker/base-image.sh [MIRROR]
set -euo pipefail
image=debian:bookworm-slim
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image is present"
  exit 0
fi
mirror=${1:-http://deb.debian.org/debian}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
tar -C "$root" -c . | docker import - "$image" >/dev/null
echo "$image imported from a debootstrap of $mirror"
