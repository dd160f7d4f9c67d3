#!/usr/bin/env bash
# Builds Kubernetes, etcd and the node-side tools from the Go module proxy, one
# cached directory per component and version under $CNAT_CACHE (the layout is
# in hack/lib.sh).
#
#   build-binaries.sh envtest   kube-apiserver, etcd, kubectl (for envtest); prints KUBEBUILDER_ASSETS
#   build-binaries.sh node      everything a kind node needs (adds kubelet, kubeadm, ... coredns, crictl, pause)
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

KUBE_CONTROL_PLANE=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
KUBE_NODE=(kubelet kubeadm kubectl)

export CGO_ENABLED=0 GOFLAGS=-mod=mod

# k8s_replaces: k8s.io/kubernetes replaces every staging module with a path in
# its own repository; point each at the release published alongside it.
k8s_replaces() {
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$K8S_STAGING_VERSION"'#p' "$gomod"
}

k8s_ldflags() {
  local v=${K8S_VERSION#v} flags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=${K8S_VERSION} -X $pkg.gitMajor=${v%%.*}"
    flags+=" -X $pkg.gitMinor=$(cut -d. -f2 <<<"$v") -X $pkg.gitTreeState=clean"
    flags+=" -X $pkg.gitCommit=module-proxy -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

# build_k8s NAME...: builds the named commands into $K8S_DIR (the ones missing).
build_k8s() {
  local missing=() name src tmp
  for name in "$@"; do [ -x "$K8S_DIR/$name" ] || missing+=("$name"); done
  [ ${#missing[@]} -gt 0 ] || { log "kubernetes ${K8S_VERSION}: $* cached"; return 0; }
  require_free_gib "$CNAT_CACHE" 8
  src=$CNAT_CACHE/src/k8s-$K8S_VERSION
  mapfile -t replaces < <(k8s_replaces)
  [ ${#replaces[@]} -gt 20 ] || die "found only ${#replaces[@]} staging modules in k8s.io/kubernetes ${K8S_VERSION}"
  wrapper_module "$src" "k8s.io/kubernetes@${K8S_VERSION}" "${replaces[@]}"
  tmp=$(mktemp -d "$CNAT_CACHE/.k8s-build.XXXXXX")
  log "building ${missing[*]} (cold: about 10 min on 2 cores)"
  (cd "$src" && go build -tags selinux,notest,grpcnotrace -ldflags "$(k8s_ldflags)" -o "$tmp/" \
    "${missing[@]/#/k8s.io/kubernetes/cmd/}")
  mkdir -p "$K8S_DIR"
  for name in "${missing[@]}"; do mv "$tmp/$name" "$K8S_DIR/$name"; done
  rm -rf "$tmp"
}

build_etcd() {
  build_go "$ETCD_DIR" etcd "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" go.etcd.io/etcd/server/v3
}

# CoreDNS with only the plugins kubeadm's Corefile uses: a full build drags in
# every cloud SDK.
build_coredns() {
  [ -x "$COREDNS_DIR/coredns" ] && { log "coredns: cached"; return 0; }
  local src=$CNAT_CACHE/src/coredns-$COREDNS_VERSION plugin
  rm -rf "$src"
  wrapper_module "$src" "github.com/coredns/coredns@${COREDNS_VERSION}"
  {
    echo "package main"
    echo "import ("
    for plugin in errors health ready kubernetes metrics forward cache loop reload loadbalance log; do
      echo "  _ \"github.com/coredns/coredns/plugin/$plugin\""
    done
    echo '  "github.com/coredns/coredns/coremain"'
    echo ")"
    echo "func main() { coremain.Run() }"
  } >"$src/main.go"
  build_go "$COREDNS_DIR" coredns "github.com/coredns/coredns@${COREDNS_VERSION}" .
}

build_crictl() {
  build_go "$CRICTL_DIR" crictl "sigs.k8s.io/cri-tools@${CRICTL_VERSION}" sigs.k8s.io/cri-tools/cmd/crictl
}

# pause is C in the kubernetes module; a static build needs only gcc and libc.
build_pause() {
  [ -x "$PAUSE_DIR/pause" ] && { log "pause: cached"; return 0; }
  command -v gcc >/dev/null || die "gcc is needed to build pause (apt-get install gcc libc6-dev)"
  local dir tmp
  dir=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  tmp=$(mktemp -d "$CNAT_CACHE/.build.XXXXXX")
  gcc -Os -static -DVERSION="v${PAUSE_IMAGE_TAG}" -o "$tmp/pause" "$dir/build/pause/linux/pause.c"
  strip "$tmp/pause"
  publish_dir "$tmp" "$PAUSE_DIR"
}

link_envtest() {
  mkdir -p "$ENVTEST_DIR"
  ln -sf "$K8S_DIR/kube-apiserver" "$K8S_DIR/kubectl" "$ETCD_DIR/etcd" "$ENVTEST_DIR/"
}

case "${1:-}" in
  envtest)
    step "build kube-apiserver, kubectl ${K8S_VERSION}" build_k8s kube-apiserver kubectl
    step "build etcd ${ETCD_VERSION}" build_etcd
    link_envtest
    echo "$ENVTEST_DIR"
    ;;
  node)
    step "build kubernetes ${K8S_VERSION}" build_k8s "${KUBE_CONTROL_PLANE[@]}" "${KUBE_NODE[@]}"
    step "build etcd ${ETCD_VERSION}" build_etcd
    step "build coredns ${COREDNS_VERSION}" build_coredns
    step "build crictl ${CRICTL_VERSION}" build_crictl
    step "build pause ${PAUSE_IMAGE_TAG}" build_pause
    link_envtest
    ;;
  *) die "usage: $0 envtest|node" ;;
esac
