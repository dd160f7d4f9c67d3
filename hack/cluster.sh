#!/usr/bin/env bash
# The project's kind cluster, online or fully offline (no container registry):
# the glue around the images. The cluster itself (reuse, recreate, create,
# Ready, run image loaded) is e2e/cluster, in Go, which the e2e tests' TestMain
# uses too; this script runs it through hack/kind-cluster.
#
#   cluster.sh up       container engine, ko, images (offline), then the cluster
#                       $KIND_CLUSTER_NAME of $NODES nodes (hack/kind-cluster up)
#   cluster.sh down     deletes the cluster
#   cluster.sh images   everything `up` does except the cluster (for e2e tests
#                       that bring the cluster up themselves)
#   cluster.sh tools    builds ko only
#   cluster.sh env      prints KEY=value lines for the Makefile and e2e tests:
#                       AIRGAP KO KIND_CLUSTER_NAME NODES KIND_NODE_IMAGE
#                       KO_DOCKER_REPO KO_DEFAULTBASEIMAGE RUN_IMAGE
#
# AIRGAP=1 forces the offline path (node image, ko base and run image built
# here from Debian packages and the Go module proxy), AIRGAP=0 the online one
# (kind's default node image, ko's default base, the manager's default run
# image). Unset, a bounded probe of the upstream registry decides.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

KO=$(tool_path ko "$KO_VERSION") # built by hack/tools.sh
IMAGES_ENV=$CNAT_CACHE/images.env # written by hack/airgap/images.sh all

# The one place that names the upstream registry: the node images kind
# pulls by default come from there, so an answer (any HTTP status) means online.
registry_reachable() { curl -sI -o /dev/null --max-time 5 https://registry.k8s.io/v2/; }

decide_airgap() {
  case "${AIRGAP:-}" in
    0 | 1) log "AIRGAP=${AIRGAP} (set by caller)" ;;
    "")
      if registry_reachable; then AIRGAP=0; else AIRGAP=1; fi
      log "AIRGAP=${AIRGAP} (registry probe: $([ "$AIRGAP" = 0 ] && echo reachable || echo unreachable))"
      ;;
    *) die "AIRGAP must be 1, 0 or unset, not '${AIRGAP}'" ;;
  esac
}

tools() { step "build ko ${KO_VERSION}" "$HACK_DIR/tools.sh" ko >/dev/null; }

# kind's own default node image, read from the pinned kind's source.
kind_default_image() {
  local dir
  dir=$(go mod download -json "sigs.k8s.io/kind@${KIND_VERSION}" | jq -r .Dir)
  sed -n 's/^const Image = "\(.*\)"/\1/p' "$dir/pkg/apis/config/defaults/image.go"
}

offline_images() {
  step "build binaries (hack/build-binaries.sh node)" "$HACK_DIR/build-binaries.sh" node
  step "build images (hack/airgap/images.sh all)" "$HACK_DIR/airgap/images.sh" all >/dev/null
}

# load_env: sets KIND_NODE_IMAGE, KO_DEFAULTBASEIMAGE and RUN_IMAGE for the chosen path.
# Online, a caller's KIND_NODE_IMAGE (e.g. a CI matrix of Kubernetes versions) wins.
load_env() {
  local wanted_node_image=${KIND_NODE_IMAGE:-}
  KIND_NODE_IMAGE="" KO_DEFAULTBASEIMAGE="" RUN_IMAGE=${RUN_IMAGE:-}
  if [ "$AIRGAP" = 1 ]; then
    if [ -f "$IMAGES_ENV" ]; then
      # shellcheck source=/dev/null
      source "$IMAGES_ENV"
    else
      log "warning: offline images not built yet (run: hack/cluster.sh images)"
    fi
  else
    KIND_NODE_IMAGE=${wanted_node_image:-$(kind_default_image)}
  fi
}

images() {
  step "container engine (hack/docker.sh)" "$HACK_DIR/docker.sh"
  tools
  if [ "$AIRGAP" = 1 ]; then offline_images; fi
  load_env
}

# kind_cluster up|down|kubeconfig: e2e/cluster's rules, with this path's images.
kind_cluster() {
  (cd "$REPO_ROOT" && KIND_CLUSTER_NAME=$KIND_CLUSTER_NAME NODES=$NODES KIND_NODE_IMAGE=$KIND_NODE_IMAGE RUN_IMAGE=$RUN_IMAGE \
    go run ./hack/kind-cluster "$1")
}

up() {
  decide_airgap
  images
  step "cluster ${KIND_CLUSTER_NAME} (hack/kind-cluster up)" kind_cluster up
  if [ "$AIRGAP" = 1 ]; then "$HACK_DIR/airgap/images.sh" prune; fi
}

print_env() {
  printf '%s=%s\n' AIRGAP "$AIRGAP" KO "$KO" KIND_CLUSTER_NAME "$KIND_CLUSTER_NAME" NODES "$NODES" \
    KIND_NODE_IMAGE "$KIND_NODE_IMAGE" KO_DOCKER_REPO kind.local RUN_IMAGE "$RUN_IMAGE"
  if [ "$AIRGAP" = 1 ]; then printf 'KO_DEFAULTBASEIMAGE=%s\n' "$KO_DEFAULTBASEIMAGE"; fi
}

case "${1:-}" in
  up) up ;;
  down) step "delete cluster ${KIND_CLUSTER_NAME}" kind_cluster down ;;
  images) decide_airgap && images ;;
  tools) tools ;;
  env) decide_airgap 2>/dev/null && load_env && print_env ;;
  *) die "usage: $0 up|down|images|tools|env  (env: KIND_CLUSTER_NAME, AIRGAP=1|0)" ;;
esac
