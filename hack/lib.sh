# shellcheck shell=bash disable=SC2034  # sourced: its variables are used by the callers
# Shared helpers for the hack/ scripts. Source it; do not run it.
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HACK_DIR/.." && pwd)
# shellcheck source=SCRIPTDIR/versions.env
source "$HACK_DIR/versions.env"

# Outputs are cached outside the work tree so that a fresh clone (CI) on a
# machine that built them once reuses them.
CNAT_CACHE=${CNAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cnat}
mkdir -p "$CNAT_CACHE"
# The cache's layout: one directory per component and version, written by
# hack/build-binaries.sh and read by hack/airgap/images.sh.
K8S_DIR=$CNAT_CACHE/k8s-$K8S_VERSION
ETCD_DIR=$CNAT_CACHE/etcd-$ETCD_VERSION
COREDNS_DIR=$CNAT_CACHE/coredns-$COREDNS_VERSION
CRICTL_DIR=$CNAT_CACHE/crictl-$CRICTL_VERSION
PAUSE_DIR=$CNAT_CACHE/pause-$K8S_VERSION
ENVTEST_DIR=$CNAT_CACHE/envtest-$K8S_VERSION

# The kind cluster's name: kind's own variable, so that a bare `kind` command
# in the same shell means the same cluster.
KIND_CLUSTER_NAME=${KIND_CLUSTER_NAME:-cnat}
# 1: one control-plane node that runs pods too; N > 1: N-1 workers besides.
NODES=${NODES:-1}
CONTEXT=kind-$KIND_CLUSTER_NAME

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# step NAME COMMAND...: runs one pipeline step, timing it and naming it on failure.
step() {
  local name=$1 start=$SECONDS rc=0
  shift
  log "==> ${name}"
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    die "step '${name}' failed (exit ${rc}) after $((SECONDS - start))s"
  fi
  log "<== ${name} ($((SECONDS - start))s)"
}

# require_free_gib DIR GIB: refuses a multi-GB step when the disk cannot hold it.
require_free_gib() {
  local dir=$1 need=$2 have
  mkdir -p "$dir"
  have=$(( $(df --output=avail -k "$dir" | tail -n 1) / 1024 / 1024 ))
  if [ "$have" -lt "$need" ]; then
    die "only ${have} GiB free under ${dir}; this step needs about ${need} GiB"
  fi
}

# publish_dir TMP FINAL: makes a finished build visible in one rename, so a
# crashed build never looks complete to the next run.
publish_dir() {
  rm -rf "$2"
  mkdir -p "$(dirname "$2")"
  mv "$1" "$2"
}

# tool_path NAME VERSION: where hack/tools.sh keeps a pinned tool it builds.
tool_path() { echo "$CNAT_CACHE/$1-$2/$1"; }

# cluster_env: exports what `hack/cluster.sh env` prints (kind, ko, the node,
# ko base and run images of the path in use).
cluster_env() {
  local env
  env=$("$HACK_DIR/cluster.sh" env) || die "hack/cluster.sh env failed"
  set -a
  eval "$env"
  set +a
}

# need_tools PKG...: apt-get installs the Debian packages (named like the tools
# they bring) that are not installed yet; needs Debian and root.
need_tools() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null ||
    die "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]})"
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# wrapper_module DIR MODULE@VERSION [GO.MOD LINES...]: a throw-away module that
# requires MODULE, so that `go build` ignores MODULE's own replace directives
# and needs no version list from the proxy (which `go install pkg@version`
# asks for, and which the proxy does not serve for every module).
wrapper_module() {
  local dir=$1 req=$2
  shift 2
  mkdir -p "$dir"
  {
    echo "module cnat.invalid/build"
    echo "go 1.26.0"
    echo "require ${req/@/ }"
    printf '%s\n' "$@"
  } >"$dir/go.mod"
}

# build_go DIR BINARY MODULE@VERSION PACKAGE [GO.MOD LINES...]: one static
# binary at DIR/BINARY, built in a wrapper module under $CNAT_CACHE/src and
# published in one rename; a binary already there is reused.
build_go() {
  local dir=$1 bin=$2 req=$3 pkg=$4 src tmp
  shift 4
  [ -x "$dir/$bin" ] && { log "$bin: cached"; return 0; }
  src=$CNAT_CACHE/src/$(basename "$dir")
  wrapper_module "$src" "$req" "$@"
  tmp=$(mktemp -d "$CNAT_CACHE/.build.XXXXXX")
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -ldflags "-s -w" -o "$tmp/$bin" "$pkg")
  publish_dir "$tmp" "$dir"
}
