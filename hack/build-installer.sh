#!/usr/bin/env bash
# Renders the one-file install: config/default (namespace, CRD, RBAC, the
# manager) with the manager's image built and published by ko, written to
# $OUTPUT (dist/install.yaml). A user installs cnat with
#   kubectl apply --server-side -f install.yaml
#
#   KO_DOCKER_REPO  where ko publishes the image (required): a registry
#                   repository, or kind.local to load it into the kind cluster
#                   $KIND_CLUSTER_NAME (default cnat) as make deploy does
#   KO_FLAGS        more `ko resolve` flags; the release passes
#                   --bare --platform=linux/amd64,linux/arm64 --tags=<tag>
#   DEFAULT_IMAGE   the manager's --default-image; unset: the manager's own
#                   default, or with kind.local offline the run image built here
#   OUTPUT          default dist/install.yaml
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

[ -n "${KO_DOCKER_REPO:-}" ] || die "set KO_DOCKER_REPO: the image repository ko publishes the manager to, or kind.local for the kind cluster"
OUTPUT=${OUTPUT:-$REPO_ROOT/dist/install.yaml}
if [ "$KO_DOCKER_REPO" = kind.local ]; then
  # The cluster's name, and offline the ko base and run images built here.
  cluster_env
  DEFAULT_IMAGE=${DEFAULT_IMAGE:-$RUN_IMAGE}
fi
KO=$("$HACK_DIR/tools.sh" ko)

# A kustomize overlay over config/default, where git ignores it.
overlay=$REPO_ROOT/_artifacts/installer
mkdir -p "$overlay" "$(dirname "$OUTPUT")"
{
  echo "resources: [../../config/default]"
  if [ -n "${DEFAULT_IMAGE:-}" ]; then
    echo "patches:"
    echo "- target: {kind: Deployment, name: cnat-controller-manager}"
    echo "  patch: '[{\"op\": \"add\", \"path\": \"/spec/template/spec/containers/0/args/-\", \"value\": \"--default-image=${DEFAULT_IMAGE}\"}]'"
  fi
} >"$overlay/kustomization.yaml"

tmp=$(mktemp "$OUTPUT.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# KO_FLAGS is a list of flags: split on purpose.
# shellcheck disable=SC2086
kubectl kustomize "$overlay" | (cd "$REPO_ROOT" && "$KO" resolve ${KO_FLAGS:-} -f -) >"$tmp"
grep -q 'ko://' "$tmp" && die "ko left an unresolved ko:// reference in $OUTPUT"
chmod 0644 "$tmp" # mktemp's 0600 is no mode for a file to publish
mv "$tmp" "$OUTPUT"
trap - EXIT
log "wrote $OUTPUT (manager image: $(sed -n 's/^ *image: //p' "$OUTPUT" | head -n 1))"
