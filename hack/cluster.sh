#!/usr/bin/env bash
# The project's kind cluster, online or fully offline (no container registry).
#
#   cluster.sh up       container engine, kind + ko, images (offline), the cluster
#                       $KIND_CLUSTER_NAME (created, reused, or recreated when stale),
#                       node and coredns Ready, run image loaded (offline)
#   cluster.sh down     deletes the cluster
#   cluster.sh images   everything `up` does except the cluster (for e2e tests
#                       that create the cluster themselves from KIND_NODE_IMAGE)
#   cluster.sh tools    builds kind and ko only
#   cluster.sh env      prints KEY=value lines for the Makefile and e2e tests:
#                       AIRGAP KIND KO KIND_CLUSTER_NAME KIND_NODE_IMAGE
#                       KO_DOCKER_REPO KO_DEFAULTBASEIMAGE RUN_IMAGE
#
# AIRGAP=1 forces the offline path (node image, ko base and run image built
# here from Debian packages and the Go module proxy), AIRGAP=0 the online one
# (kind's default node image, ko's default base, the manager's default run
# image). Unset, a bounded probe of the upstream registry decides.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

KIND=$(tool_path kind "$KIND_VERSION") # built by hack/tools.sh
KO=$(tool_path ko "$KO_VERSION")
IMAGES_ENV=$CNAT_CACHE/images.env # written by hack/airgap/images.sh all
WAIT_SECONDS=${WAIT_SECONDS:-300}

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

# tools: kind and ko, built by hack/tools.sh (cached under $KIND and $KO).
tools() {
  step "build kind ${KIND_VERSION}" "$HACK_DIR/tools.sh" kind >/dev/null
  step "build ko ${KO_VERSION}" "$HACK_DIR/tools.sh" ko >/dev/null
}

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

kubectl_() {
  local k=kubectl
  command -v kubectl >/dev/null || k=$K8S_DIR/kubectl
  "$k" --context "$CONTEXT" "$@"
}

KIND_CONFIG=$HACK_DIR/kind-config.yaml
# The node remembers which kind config made it, so that a changed config
# recreates the cluster the way a changed node image does.
CONFIG_MARK=/kind/cnat-kind-config.sha256
config_hash() { sha256sum <"$KIND_CONFIG" | cut -c1-12; }
# etcd keeps its data on the node's tmpfs (see kind-config.yaml), so a node
# restarted by Docker comes back with an empty etcd: no RBAC bindings, no
# workloads. A mark on the same tmpfs tells such a node from a healthy one.
ETCD_MARK=/tmp/cnat-etcd-since-create

cluster_exists() { "$KIND" get clusters 2>/dev/null | grep -qxF "$KIND_CLUSTER_NAME"; }

# ensure_cluster: reuses a healthy cluster on the wanted node image; recreates
# a stale (other image) or broken one.
ensure_cluster() {
  local node=$KIND_CLUSTER_NAME-control-plane have config
  if cluster_exists; then
    have=$(docker inspect -f '{{.Config.Image}} {{.State.Running}}' "$node" 2>/dev/null || true)
    config=$(docker exec "$node" cat "$CONFIG_MARK" 2>/dev/null || true)
    if [ "$have" != "$KIND_NODE_IMAGE true" ] || [ "$config" != "$(config_hash)" ]; then
      log "cluster $KIND_CLUSTER_NAME is stale or stopped (node: ${have:-missing}, config ${config:-unknown}; want $KIND_NODE_IMAGE, config $(config_hash)): recreating"
    elif ! docker exec "$node" test -e "$ETCD_MARK"; then
      log "cluster $KIND_CLUSTER_NAME's node has restarted since it was created, and its etcd (on tmpfs) with it: recreating"
    elif "$KIND" export kubeconfig --name "$KIND_CLUSTER_NAME" 2>/dev/null &&
      kubectl_ get --raw /readyz --request-timeout=10s >/dev/null 2>&1; then
      log "reusing cluster $KIND_CLUSTER_NAME (node image $KIND_NODE_IMAGE)"
      return 0
    else
      log "cluster $KIND_CLUSTER_NAME does not answer: recreating"
    fi
    "$KIND" delete cluster --name "$KIND_CLUSTER_NAME"
  fi
  "$KIND" create cluster --name "$KIND_CLUSTER_NAME" --image "$KIND_NODE_IMAGE" --config "$KIND_CONFIG"
  docker exec "$node" sh -c "echo $(config_hash) >$CONFIG_MARK && touch $ETCD_MARK"
}

# wait_ready WHAT KUBECTL_WAIT_ARGS...: retries `kubectl wait` until the deadline;
# early failures (no such pod yet, coredns' first x509 errors while kube-proxy
# has not written its rules) are expected and retried, not fatal.
wait_ready() {
  local what=$1 deadline=$((SECONDS + WAIT_SECONDS))
  shift
  until kubectl_ wait --for=condition=Ready --timeout=15s "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { kubectl_ get nodes,pods -A -o wide >&2 || true; die "$what not Ready after ${WAIT_SECONDS}s"; }
    sleep 2
  done
}

up() {
  local start=$SECONDS
  decide_airgap
  images
  step "cluster ${KIND_CLUSTER_NAME}" ensure_cluster
  step "wait for node Ready" wait_ready "node" node --all
  step "wait for coredns Ready" wait_ready "coredns" -n kube-system pod -l k8s-app=kube-dns
  if [ "$AIRGAP" = 1 ]; then
    step "load run image ${RUN_IMAGE}" "$KIND" load docker-image "$RUN_IMAGE" --name "$KIND_CLUSTER_NAME"
    "$HACK_DIR/airgap/images.sh" prune
  fi
  log "cluster ${KIND_CLUSTER_NAME} ready in $((SECONDS - start))s (kubectl context ${CONTEXT})"
}

print_env() {
  printf '%s=%s\n' AIRGAP "$AIRGAP" KIND "$KIND" KO "$KO" KIND_CLUSTER_NAME "$KIND_CLUSTER_NAME" \
    KIND_NODE_IMAGE "$KIND_NODE_IMAGE" KO_DOCKER_REPO kind.local RUN_IMAGE "$RUN_IMAGE"
  if [ "$AIRGAP" = 1 ]; then printf 'KO_DEFAULTBASEIMAGE=%s\n' "$KO_DEFAULTBASEIMAGE"; fi
}

case "${1:-}" in
  up) up ;;
  down)
    [ -x "$KIND" ] || die "kind is not built ($KIND): nothing created a cluster with it"
    step "delete cluster ${KIND_CLUSTER_NAME}" "$KIND" delete cluster --name "$KIND_CLUSTER_NAME"
    ;;
  images) decide_airgap && images ;;
  tools) tools ;;
  env) decide_airgap 2>/dev/null && load_env && print_env ;;
  *) die "usage: $0 up|down|images|tools|env  (env: KIND_CLUSTER_NAME, AIRGAP=1|0)" ;;
esac
