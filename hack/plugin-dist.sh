#!/usr/bin/env bash
# Cross-builds kubectl-at for every platform the release ships, packs one
# archive per platform, writes their checksums and fills the krew manifest
# (plugins/at.yaml) in with them. Everything goes to dist/:
#   kubectl-at_<version>_<os>_<arch>.tar.gz, checksums.txt, at.yaml
#
#   plugin-dist.sh VERSION      e.g. v0.2.0 (a release tag)
#   PLUGIN_PLATFORMS            default: linux, darwin, windows × amd64, arm64
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

VERSION=${1:?usage: $0 VERSION}
PLATFORMS=${PLUGIN_PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}
DIST=$REPO_ROOT/dist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$DIST"
rm -f "$DIST"/kubectl-at_*.tar.gz "$DIST/checksums.txt" "$DIST/at.yaml"

for platform in $PLATFORMS; do
  os=${platform%/*} arch=${platform#*/}
  ext="" && [ "$os" = windows ] && ext=.exe
  dir=$work/kubectl-at_${VERSION}_${os}_${arch}
  mkdir -p "$dir"
  step "build kubectl-at ${os}/${arch}" env CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" \
    go build -C "$REPO_ROOT" -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o "$dir/kubectl-at$ext" ./cmd/kubectl-at
  # kubectl (1.26+) completes a plugin's arguments through kubectl_complete-<name>.
  if [ "$os" != windows ]; then
    install -m 0755 "$REPO_ROOT/plugins/kubectl_complete-at" "$dir/"
  fi
  # Reproducible archives: same inputs, same checksum.
  tar -C "$dir" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - . |
    gzip -n >"$DIST/$(basename "$dir").tar.gz"
done

(cd "$DIST" && sha256sum kubectl-at_*.tar.gz >checksums.txt)
go run -C "$REPO_ROOT" ./hack/krew-manifest --template plugins/at.yaml --tag "$VERSION" \
  --checksums "$DIST/checksums.txt" >"$DIST/at.yaml"
log "dist/: $(wc -l <"$DIST/checksums.txt") archives, checksums.txt, at.yaml (the krew manifest)"
