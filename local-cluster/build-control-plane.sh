#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler, etcd, helm, kwok) and
# the real node's binaries (kubelet, kube-proxy, CoreDNS) from Go modules, pinned, into a cache outside the repository keyed by the versions. Does nothing when every
# binary is already there. Prints the bin directory on stdout as its last line.
set -euo pipefail

K8S_VERSION=v1.33.13
ETCD_VERSION=v3.5.21 # the etcd server k8s.io/kubernetes requires; built inside the same module
HELM_VERSION=v3.18.6
KWOK_VERSION=v0.7.0
COREDNS_VERSION=v1.12.4 # the cluster DNS of the real node (Service names resolve as on a real cluster)
KEDA_VERSION=v2.18.1 # only its ScaledObject CRD, from the Go module, for the HPA/KEDA actuator tests
PROMETHEUS_OPERATOR_VERSION=v0.85.0 # only its ServiceMonitor, PodMonitor and PrometheusRule CRDs, for the chart tests

here=$(cd "$(dirname "$0")" && pwd)
cache=${RECSHARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/recshard}
bin="$cache/controlplane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION-kwok-$KWOK_VERSION/bin"
mkdir -p "$bin"

export GOTOOLCHAIN=local   # a module asking for a newer Go must fail, not download a toolchain
export GOSUMDB=off         # pinned by our go.sum; the checksum database is not reachable for every module here
export CGO_ENABLED=0
export GOFLAGS=-mod=mod

log() { echo "[control-plane] $*" >&2; }
need() { [ -x "$bin/$1" ] && return 1 || return 0; }

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
vpkg="k8s.io/component-base/version"
cpkg="k8s.io/client-go/pkg/version"
ldflags="-s -w"
for p in $vpkg $cpkg; do
  ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

build_k8s() {
  local name=$1 pkg=$2 version=$3
  if need "$name"; then
    log "building $name ($version) ..."
    local t0=$SECONDS
    (cd "$here/controlplane" && go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg")
    mv "$bin/$name.tmp" "$bin/$name"
    log "built $name in $((SECONDS - t0))s"
  fi
}

build_k8s kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$K8S_VERSION"
build_k8s kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$K8S_VERSION"
build_k8s kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$K8S_VERSION"
build_k8s etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
build_k8s kubelet k8s.io/kubernetes/cmd/kubelet "$K8S_VERSION"
build_k8s kube-proxy k8s.io/kubernetes/cmd/kube-proxy "$K8S_VERSION"

if need helm; then
  log "building helm ($HELM_VERSION) ..."
  t0=$SECONDS
  GOBIN="$bin" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  log "built helm in $((SECONDS - t0))s"
fi
if need kwok; then
  log "building kwok ($KWOK_VERSION) ..."
  t0=$SECONDS
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  log "built kwok in $((SECONDS - t0))s"
fi

if need "coredns-$COREDNS_VERSION"; then
  log "building coredns ($COREDNS_VERSION) ..."
  t0=$SECONDS
  gobin=$(mktemp -d "$bin/coredns.XXXXXX")
  GOBIN="$gobin" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  mv "$gobin/coredns" "$bin/coredns-$COREDNS_VERSION" && rmdir "$gobin"
  log "built coredns in $((SECONDS - t0))s"
fi

keda_crd="$bin/keda-$KEDA_VERSION-scaledobjects.yaml"
if [ ! -s "$keda_crd" ]; then
  log "fetching KEDA's ScaledObject CRD ($KEDA_VERSION) ..."
  dir=$(go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  cp "$dir/config/crd/bases/keda.sh_scaledobjects.yaml" "$keda_crd.tmp"
  mv "$keda_crd.tmp" "$keda_crd"
fi

monitoring_crds="$bin/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION-crds"
if [ ! -s "$monitoring_crds/monitoring.coreos.com_prometheusrules.yaml" ]; then
  log "fetching the Prometheus Operator's monitoring CRDs ($PROMETHEUS_OPERATOR_VERSION) ..."
  dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$monitoring_crds.tmp"
  for kind in servicemonitors podmonitors prometheusrules; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$monitoring_crds.tmp/"
  done
  rm -rf "$monitoring_crds" && mv "$monitoring_crds.tmp" "$monitoring_crds"
fi

echo "$bin"
