#!/usr/bin/env bash
# Installs the real Prometheus server from Debian's `prometheus` package into a cache outside the repository:
# the package is downloaded and unpacked (dpkg -x), not installed, so no service is started and nothing outside
# the cache changes. Does nothing when it is already there. Prints the binary's path on stdout.
set -euo pipefail

cache=${RECSHARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/recshard}
dir="$cache/prometheus"
binary="$dir/usr/bin/prometheus"
if [ -x "$binary" ]; then echo "$binary"; exit 0; fi
if command -v prometheus >/dev/null 2>&1; then command -v prometheus; exit 0; fi

log() { echo "[prometheus] $*" >&2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! apt-get download prometheus >/dev/null 2>&1; then
  log "refreshing the package lists ..."
  if [ "$(id -u)" = 0 ]; then apt-get update >/dev/null; else sudo apt-get update >/dev/null; fi
  apt-get download prometheus >/dev/null
fi
mkdir -p "$dir"
dpkg -x prometheus_*.deb "$dir"
log "unpacked $(ls prometheus_*.deb) into $dir"
"$binary" --version >/dev/null
echo "$binary"
