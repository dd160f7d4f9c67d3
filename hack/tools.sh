#!/usr/bin/env bash
# Prints the path of a pinned command-line tool, building it the first time:
# the Go tools from the Go module proxy into $CNAT_CACHE/<tool>-<version>,
# and ShellCheck from Debian's packages.
#
#   tools.sh ko|chainsaw|kuttl|actionlint|golangci-lint|shellcheck
#
# (kind is not among them: the cluster is made by the kind library, e2e/cluster.)
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

TOOLS="ko|chainsaw|kuttl|actionlint|golangci-lint|shellcheck"
case "${1:-}" in
  ko) module=github.com/google/ko pkg=$module version=$KO_VERSION ;;
  chainsaw) module=github.com/kyverno/chainsaw pkg=$module version=$CHAINSAW_VERSION ;;
  # kubectl-kuttl, the binary behind `kubectl kuttl`.
  kuttl) module=github.com/kudobuilder/kuttl pkg=$module/cmd/kubectl-kuttl version=$KUTTL_VERSION ;;
  actionlint) module=github.com/rhysd/actionlint pkg=$module/cmd/actionlint version=$ACTIONLINT_VERSION ;;
  golangci-lint) module=github.com/golangci/golangci-lint/v2 pkg=$module/cmd/golangci-lint version=$GOLANGCI_LINT_VERSION ;;
  shellcheck)
    # Any shellcheck on PATH will do; else Debian's (it is Haskell, not on the Go module proxy).
    command -v shellcheck >/dev/null || need_tools shellcheck
    command -v shellcheck
    exit 0
    ;;
  *) die "usage: $0 $TOOLS" ;;
esac
name=$1
path=$(tool_path "$name" "$version")
if [ ! -x "$path" ]; then
  log "building $name $version ($pkg; cold: 1-3 min)"
  build_go "$(dirname "$path")" "$name" "$module@$version" "$pkg" >&2 || die "building $name $version failed"
fi
echo "$path"
