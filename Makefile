# recshard: the two set-up commands are `make demo` and `make test`; both install what they need.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
NPM ?= npm
export ONNXRUNTIME_NODE_INSTALL := skip

.PHONY: help deps build gen typecheck lint format test test-unit test-dataplane test-cluster demo bench bench-reliability images cluster-up cluster-down control-plane prometheus torch-venv clean

help:
	@echo "make demo          plan the examples, serve DLRM-RMC2 locally in every strategy under load, run the operator on a local control plane"
	@echo "make test          every test: lint, unit, data plane, then the cluster suites on a real local control plane"
	@echo "make cluster-up    start this checkout's local cluster: control plane, KWOK nodes, a real node (prints KUBECONFIG); make cluster-down stops it"
	@echo "make bench-reliability  overload, shard faults and hedging on real processes into docs/reliability.md (about 8 min)"
	@echo "make bench         the seven benchmarks into docs/benchmarks.md with charts (about 20 min, root; BENCH_FLAGS=--quick for a smoke run)"
	@echo "make images        build the operator and shard-server images with docker or podman (IMAGE_REGISTRY, IMAGE_TAG)"
	@echo "make lint          ESLint (layers, import cycles, line width) and Prettier's check, over the whole tree"
	@echo "make format        rewrite every TypeScript file in Prettier's format"
	@echo "make gen           regenerate TypeScript types from crds/ after editing the CRD"

node_modules/.deps-stamp: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.deps-stamp

build: deps
	npx tsc -p tsconfig.json
	npx tsx scripts/build-wasm.ts

gen: deps
	npx tsx operator/api/gen-types.ts operator/api/v1alpha1/types.generated.ts

# Type-checks the tests, scripts and sources together (the build checks the sources alone).
typecheck: deps
	npx tsc -p test/tsconfig.json

# ESLint (typescript-eslint, the layers of docs/architecture.md, no import cycles) and Prettier, configured once
# (eslint.config.js, .prettierrc.json) for every TypeScript file of the repository.
lint: deps
	npx eslint --max-warnings=0 .
	npx prettier --check --log-level=warn "**/*.{ts,js}"

format: deps
	npx prettier --write --log-level=warn "**/*.{ts,js}"
	npx eslint --fix .

# Builds the pinned control plane from Go modules into ~/.cache/recshard (once; seconds when cached).
control-plane:
	bash local-cluster/build-control-plane.sh >/dev/null

# The real Prometheus server (Debian's package, unpacked into ~/.cache/recshard) for the autoscaling tests.
prometheus:
	bash local-cluster/install-prometheus.sh >/dev/null

# The PyTorch eager baseline of the benchmarks (torch, numpy, onnx from PyPI) in a venv under ~/.cache/recshard,
# built once per bench/torch/requirements.txt (about 2 minutes and 5 GiB).
torch-venv:
	bash bench/torch/venv.sh >/dev/null

test: build control-plane prometheus torch-venv typecheck lint
	npx vitest run

test-unit: build
	npx vitest run --project unit

test-dataplane: build torch-venv
	npx vitest run --project dataplane

test-cluster: build control-plane prometheus
	npx vitest run --project cluster

demo: build control-plane
	npx tsx scripts/demo.ts

# Needs gcc for the C reference kernels of benchmark 3.
BENCH_FLAGS ?=
bench: build torch-venv
	npx tsx bench/run.ts $(BENCH_FLAGS)
	npx tsx bench/run-reliability.ts $(BENCH_FLAGS)

# The data plane under overload and shard faults, on real processes, into docs/reliability.md (about 3 min).
bench-reliability: build
	npx tsx bench/run-reliability.ts $(BENCH_FLAGS)

# The operator and shard-server images (images/Dockerfile), tagged as the chart expects them by default.
IMAGE_REGISTRY ?= ghcr.io/recshard
IMAGE_TAG ?= $(shell node -p 'require("./package.json").version')
CONTAINER_ENGINE ?= $(shell command -v docker || command -v podman)
images:
	@if [ -z "$(CONTAINER_ENGINE)" ]; then echo "make images: neither docker nor podman is installed (set CONTAINER_ENGINE=...)" >&2; exit 1; fi
	$(CONTAINER_ENGINE) build -f images/Dockerfile --target operator -t $(IMAGE_REGISTRY)/operator:$(IMAGE_TAG) .
	$(CONTAINER_ENGINE) build -f images/Dockerfile --target shard-server -t $(IMAGE_REGISTRY)/shard-server:$(IMAGE_TAG) .

cluster-up: build control-plane
	npx tsx local-cluster/cli.ts up

cluster-down: deps
	npx tsx local-cluster/cli.ts down

clean:
	rm -rf dist node_modules/.deps-stamp
