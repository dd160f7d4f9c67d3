# cnat — `make dev` brings up a local kind cluster and runs the sample At;
# `make test` runs every test tier. `make help` lists the rest.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CONTROLLER_GEN := go tool controller-gen
GOTESTSUM := go tool gotestsum
# JUnit reports of every tier, and the e2e cluster logs on failure.
export ARTIFACTS ?= $(CURDIR)/_artifacts

.PHONY: help
help: ## Show the targets, by section.
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target>\n"} \
		/^[a-z0-9-]+:.*## / {printf "  %-18s %s\n", $$1, $$2} \
		/^##@/ {printf "\n%s\n", substr($$0, 5)}' $(MAKEFILE_LIST)

##@ Code generation
.PHONY: generate manifests verify-generated
generate: ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

manifests: ## Generate the CRD and RBAC from markers.
	$(CONTROLLER_GEN) crd:generateEmbeddedObjectMeta=true rbac:roleName=manager-role paths=./... output:crd:artifacts:config=config/crd/bases
	go run ./hack/trim-crd config/crd/bases/cnat.programming-kubernetes.info_ats.yaml

verify-generated: generate manifests ## Fail if generated files are not committed as generated.
	@git diff --exit-code -- api config || { echo "generated files are stale: run 'make generate manifests' and commit"; exit 1; }

##@ Tests
.PHONY: lint
lint: ## golangci-lint, shellcheck on every script, actionlint, chainsaw lint on every suite.
	"$$(hack/tools.sh golangci-lint)" run ./...
	git ls-files -z | xargs -0 grep -lZ '^#!/.*sh$$' | xargs -0 "$$(hack/tools.sh shellcheck)" -x -P SCRIPTDIR
	"$$(hack/tools.sh actionlint)"
	for f in e2e/chainsaw/*/chainsaw-test.yaml; do "$$(hack/tools.sh chainsaw)" lint test -f "$$f" >/dev/null || exit 1; done
	"$$(hack/tools.sh chainsaw)" lint configuration -f e2e/chainsaw/.chainsaw.yaml >/dev/null

.PHONY: vet envtest-assets test-unit e2e test-drain test clean-reports
vet: ## go vet every package.
	go vet ./...

envtest-assets: ## Build kube-apiserver and etcd for envtest (cached).
	@hack/build-binaries.sh envtest >/dev/null

test-unit: envtest-assets ## Unit tests and envtest integration tests.
	@mkdir -p $(ARTIFACTS)
	KUBEBUILDER_ASSETS="$$(hack/build-binaries.sh envtest)" $(GOTESTSUM) --format pkgname \
		--junitfile $(ARTIFACTS)/junit-unit.xml -- -count=1 ./api/... ./cmd/... ./internal/... ./hack/krew-manifest/... ./e2e/bench/... ./e2e/cluster/...

e2e: ## End-to-end on kind (reused when warm): e2e-framework features, chainsaw suites, kuttl cases.
	hack/e2e.sh -args --skip-labels area=drain

# The drain needs a node to drain and another for its pods, the manager's
# among them: it runs on cnat-multi, never in make test (it fails loudly on
# a cluster without 2 schedulable workers).
test-drain: export KIND_CLUSTER_NAME := cnat-multi
test-drain: export NODES := 3
test-drain: ## Only the e2e feature area=drain, on cluster cnat-multi (3 nodes): a worker drained under long Ats and the manager.
	@mkdir -p $(ARTIFACTS)
	@rm -f $(ARTIFACTS)/junit-drain.xml
	hack/cluster.sh up
	source hack/lib.sh && cluster_env && E2E_KEEP_CLUSTER=1 $(GOTESTSUM) --format standard-verbose \
		--junitfile $(ARTIFACTS)/junit-drain.xml -- -count=1 -timeout 20m -run '^TestDrain$$' ./e2e/ -args --labels area=drain

clean-reports: ## Remove the JUnit reports of an earlier run.
	@rm -f $(ARTIFACTS)/junit-*.xml

test: clean-reports verify-generated vet test-unit e2e ## Every test tier: unit, envtest, e2e on kind (Go, chainsaw, kuttl).
	@go run ./hack/junit-summary $(ARTIFACTS)/junit-*.xml

##@ Running
.PHONY: install run
install: ## Apply the CRD to the current kubeconfig's cluster.
	kubectl apply -k config/crd

run: install ## Run the manager locally against the current kubeconfig (metrics: plain HTTP on :8080, insecure).
	go run ./cmd --metrics-secure=false --metrics-bind-address=:8080 --health-probe-bind-address=:8081

##@ Local cluster
.PHONY: cluster cluster-down deploy dev
cluster: ## Bring up the kind cluster $KIND_CLUSTER_NAME, default cnat, of $NODES nodes, default 1 (offline images built when no registry answers).
	hack/cluster.sh up

cluster-down: ## Delete the kind cluster.
	hack/cluster.sh down

deploy: ## Build the manager with ko into the cluster and deploy config/default.
	hack/deploy.sh

dev: cluster deploy ## Cluster, manager, and the sample At run to DONE with its output.
	hack/run-sample.sh

##@ Plugin and release
.PHONY: plugin plugin-dist build-installer release-dry-run
# The version the plugin reports and the release files carry.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

plugin: ## Build the kubectl plugin into bin/kubectl-at (with bin/ on PATH: kubectl at ...).
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o bin/kubectl-at ./cmd/kubectl-at

plugin-dist: ## Cross-build kubectl-at (linux, darwin, windows x amd64, arm64), checksums and the krew manifest into dist/.
	hack/plugin-dist.sh $(VERSION)

build-installer: ## Render dist/install.yaml: CRD, RBAC, manager (image by ko to KO_DOCKER_REPO; kind.local: the kind cluster).
	hack/build-installer.sh

release-dry-run: ## What the release workflow builds, locally: plugin-dist, and build-installer into the kind cluster.
	$(MAKE) plugin-dist
	KO_DOCKER_REPO=kind.local $(MAKE) build-installer

##@ Benchmark
.PHONY: bench
BENCH_ARGS ?=
# The benchmark runs on a cluster of its own, a control plane and two
# workers, so that its bursts run to DONE; `make dev` stays on one node.
bench: export KIND_CLUSTER_NAME := cnat-multi
bench: export NODES := 3
bench: cluster deploy ## Start lag, bursts to DONE, API cost, memory and restart, side by side with CronJob, on cluster cnat-multi (3 nodes) (BENCH_ARGS="--trials 10 ...").
	source hack/lib.sh && cluster_env && go run ./e2e/bench $(BENCH_ARGS)
