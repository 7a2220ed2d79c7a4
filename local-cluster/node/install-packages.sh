#!/usr/bin/env bash
# Installs the Debian packages the real node and the image builds need: containerd, runc and the CNI plugins
# (the node), iptables and conntrack (kube-proxy's rules, written only inside the node's network namespace),
# podman, buildah, umoci and skopeo (images without a registry), openssl (the mutual-TLS tests' certificates). Installing them starts nothing (no systemd here).
# Does nothing when every command is already there.
set -euo pipefail

packages=(containerd runc containernetworking-plugins iptables conntrack podman buildah fuse-overlayfs umoci skopeo openssl)
commands=(containerd runc /usr/lib/cni/bridge iptables-save conntrack podman buildah umoci skopeo openssl)
missing=0
for c in "${commands[@]}"; do command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || missing=1; done
[ "$missing" = 0 ] && exit 0

log() { echo "[node-packages] $*" >&2; }
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
log "installing ${packages[*]} ..."
t0=$SECONDS
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update >/dev/null
  "${sudo[@]}" apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null
fi
log "installed in $((SECONDS - t0))s"
