#!/usr/bin/env bash
# Builds the manager with ko straight into the kind cluster (no registry) and
# applies config/default; offline, the manager's --default-image names the
# locally built run image. Waits until the manager is rolled out.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

cluster_env

# A kustomize overlay over config/default, written where git ignores it.
render() {
  local overlay=$REPO_ROOT/_artifacts/deploy
  mkdir -p "$overlay"
  {
    echo "resources: [../../config/default]"
    if [ -n "$RUN_IMAGE" ]; then
      echo "patches:"
      echo "- target: {kind: Deployment, name: cnat-controller-manager}"
      echo "  patch: '[{\"op\": \"add\", \"path\": \"/spec/template/spec/containers/0/args/-\", \"value\": \"--default-image=${RUN_IMAGE}\"}]'"
    fi
  } >"$overlay/kustomization.yaml"
  kubectl kustomize "$overlay"
}

apply() {
  render | (cd "$REPO_ROOT" && "$KO" apply -f - -- --context "$CONTEXT")
}

step "ko apply config/default (KO_DOCKER_REPO=${KO_DOCKER_REPO})" apply
step "wait for the manager rollout" kubectl --context "$CONTEXT" -n cnat-system \
  rollout status deployment/cnat-controller-manager --timeout=180s
