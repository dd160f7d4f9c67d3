# cnat — `make dev` brings up a local kind cluster and runs the sample At;
# `make test` runs every test tier. `make help` lists the rest.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CONTROLLER_GEN := go tool controller-gen
ARTIFACTS ?= $(CURDIR)/_artifacts

.PHONY: help
help: ## Show the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

##@ Code generation
.PHONY: generate manifests verify-generated
generate: ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

manifests: ## Generate the CRD and RBAC from markers.
	$(CONTROLLER_GEN) crd rbac:roleName=manager-role paths=./... output:crd:artifacts:config=config/crd/bases

verify-generated: generate manifests ## Fail if generated files are not committed as generated.
	@git diff --exit-code -- api config || { echo "generated files are stale: run 'make generate manifests' and commit"; exit 1; }

##@ Tests
.PHONY: vet envtest-assets test-unit test
vet: ## go vet every package.
	go vet ./...

envtest-assets: ## Build kube-apiserver and etcd for envtest (cached).
	@hack/build-binaries.sh envtest >/dev/null

test-unit: envtest-assets ## Unit tests and envtest integration tests.
	KUBEBUILDER_ASSETS="$$(hack/build-binaries.sh envtest)" go test -count=1 ./api/... ./cmd/... ./internal/...

test: verify-generated vet test-unit ## Every test tier.

##@ Running
.PHONY: install run
install: ## Apply the CRD to the current kubeconfig's cluster.
	kubectl apply -k config/crd

run: install ## Run the manager locally against the current kubeconfig.
	go run ./cmd --metrics-bind-address=:8080 --health-probe-bind-address=:8081
