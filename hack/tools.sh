#!/usr/bin/env bash
# Prints the path of a pinned command-line tool, building it from the Go
# module proxy into $CNAT_CACHE/<tool>-<version> the first time.
#
#   tools.sh kind|ko|chainsaw|actionlint|golangci-lint
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

case "${1:-}" in
  kind) module=sigs.k8s.io/kind version=$KIND_VERSION ;;
  ko) module=github.com/google/ko version=$KO_VERSION ;;
  chainsaw) module=github.com/kyverno/chainsaw version=$CHAINSAW_VERSION ;;
  actionlint) module=github.com/rhysd/actionlint/cmd/actionlint version=$ACTIONLINT_VERSION ;;
  golangci-lint) module=github.com/golangci/golangci-lint/v2/cmd/golangci-lint version=$GOLANGCI_LINT_VERSION ;;
  *) die "usage: $0 kind|ko|chainsaw|actionlint|golangci-lint" ;;
esac
name=$1
dir=$CNAT_CACHE/$name-$version

if [ ! -x "$dir/$name" ]; then
  tmp=$(mktemp -d "$CNAT_CACHE/.tool.XXXXXX")
  log "building $name $version (go install $module@$version; cold: 1-3 min)"
  # Outside the repo, so that the project's go.mod does not take part.
  (cd "$tmp" && GOBIN=$tmp CGO_ENABLED=0 GOFLAGS='' go install "$module@$version") || die "building $name $version failed"
  publish_dir "$tmp" "$dir"
fi
echo "$dir/$name"
