#!/usr/bin/env bash
# The venv of the PyTorch baseline: built once per requirements.txt (its sha256 names the folder), under
# ${RECSHARD_CACHE:-$HOME/.cache/recshard}. Idempotent and safe to run concurrently (flock). Progress goes to
# stderr; the last line on stdout is the venv's python.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
cache="${RECSHARD_CACHE:-$HOME/.cache/recshard}"
hash="$(sha256sum "$req" | cut -c1-12)"
venv="$cache/torch-venv-$hash"
stamp="$venv/.recshard-installed"

mkdir -p "$cache"
# One builder at a time; the others wait, then find the stamp.
exec 9>"$venv.lock"
flock 9

if [[ ! -f "$stamp" || ! -x "$venv/bin/python" ]]; then
  echo "torch baseline: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv (several minutes and ~5 GB the first time)" >&2
  # a venv left half-built by an interrupted run is started over (venvs cannot be moved, so it is built in place)
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
  "$venv/bin/python" -c 'import torch, numpy, onnx' >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
