#!/usr/bin/env bash
# Builds the Debian bookworm base image that every platform image starts FROM,
# with no container registry: debootstrap fetches .deb packages from Debian's
# mirror, and `docker import` turns the root filesystem into an image.
# Cached: a machine that already has the image skips the work.
set -euo pipefail

IMAGE="${BASE_IMAGE:-ml-debian-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base: $IMAGE already present, skipping debootstrap"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "base: installing debootstrap from Debian's packages"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq debootstrap >/dev/null
  fi
fi

root="$(mktemp -d /tmp/ml-debian-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT

echo "base: debootstrap --variant=minbase bookworm (about 2 minutes)"
start=$(date +%s)
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || {
  echo "error: debootstrap failed, last lines of $root.log:" >&2
  tail -n 20 "$root.log" >&2
  exit 1
}
# Keep the image small: package lists and caches are rebuilt by `apt-get update` in each Dockerfile.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* "$root"/usr/share/man/*

tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  - "$IMAGE" >/dev/null
rm -f "$root.log"
echo "base: built $IMAGE in $(( $(date +%s) - start )) s ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
