#!/usr/bin/env bash
# Builds the images an offline kind + ko setup needs, from Debian packages and
# the binaries of hack/build-binaries.sh; nothing is pulled from a registry.
#
#   images.sh run-image   cnat.local/busybox:<busybox-static version>  (At pods' image)
#   images.sh ko-base     ko.local/cnat-static-base:<key>              (KO_DEFAULTBASEIMAGE)
#   images.sh kind-base   cnat.local/kind-base:<suite>-<key>           (Debian rootfs + kind's base files)
#   images.sh node        cnat.local/kind-node:<k8s version>-<key>     (kind node image)
#   images.sh all         all of the above; writes them to $CNAT_CACHE/images.env
#   images.sh prune       removes node images other than the one in images.env
#
# Each prints the image name on stdout (the builders below set RESULT to it).
# <key> hashes the image's inputs (the recipe below, versions, files); an image
# whose tag exists is reused, and a tag is only ever set by the last, atomic
# command (import, build or commit), so an interrupted build is never taken for
# a finished one. Temporary files and containers are removed on exit.
# shellcheck disable=SC2016 # mmdebstrap hooks' "$1" is for mmdebstrap's shell
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "$0")/../lib.sh"

AIRGAP_DIR=$HACK_DIR/airgap
LABEL=cnat.inputs
# The node's userland, as kind's base image has it, from Debian instead of
# kind's own containerd/runc/CNI builds.
NODE_PACKAGES=(systemd systemd-sysv conntrack iptables nftables iproute2 ethtool util-linux mount kmod
  libseccomp2 pigz e2fsprogs bash ca-certificates curl jq procps hostname
  containerd runc containernetworking-plugins socat)
KUBE_PROXY_PACKAGES=(iptables nftables conntrack)
export DOCKER_BUILDKIT=0 # the classic builder builds FROM scratch / local images offline

CLEANUP=()
cleanup() {
  local c
  for c in "${CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# key WORDS... <INPUTS: a short hash of the given words and of stdin.
key() { { printf '%s\n' "$@"; cat; } | sha256sum | cut -c1-12; }
# dbuild ARGS...: docker build (classic builder), quiet unless it fails.
dbuild() {
  local out
  out=$(docker build -q "$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
}
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
# shellcheck source=/dev/null
suite() { . /etc/os-release && echo "$VERSION_CODENAME"; }
kind_base_files() { echo "$(go mod download -json "sigs.k8s.io/kind@${KIND_VERSION}" | jq -r .Dir)/images/base/files"; }

# The Debian packages whose files go into images directly, and the versions
# apt would install (one apt-cache call: each costs about a second here).
APT_PACKAGES=(busybox-static ca-certificates tzdata)
declare -A APT_VERSION=()
apt_candidates() {
  apt-cache policy "${APT_PACKAGES[@]}" 2>/dev/null |
    awk '/^[^ ].*:$/ {p = substr($0, 1, length($0) - 1)} /^ *Candidate:/ && $2 != "(none)" {print p, $2}'
}
load_apt_versions() {
  local lines pkg version
  [ ${#APT_VERSION[@]} -eq 0 ] || return 0
  lines=$(apt_candidates)
  if [ "$(grep -c . <<<"$lines")" -ne ${#APT_PACKAGES[@]} ]; then
    [ "$(id -u)" -eq 0 ] || die "apt does not know ${APT_PACKAGES[*]}: run apt-get update as root"
    log "apt-get update (apt does not know ${APT_PACKAGES[*]} yet)"
    apt-get update -qq
    lines=$(apt_candidates)
  fi
  while read -r pkg version; do APT_VERSION[$pkg]=$version; done <<<"$lines"
  [ ${#APT_VERSION[@]} -eq ${#APT_PACKAGES[@]} ] || die "apt has no candidate for some of ${APT_PACKAGES[*]}"
}
apt_version() { echo "${APT_VERSION[$1]:?"$1 is not in APT_PACKAGES"}"; }

# extract_debs DIR PKG...: downloads the packages' .debs (no install) and unpacks them into DIR.
extract_debs() {
  local dir=$1 deb
  shift
  mkdir -p "$dir/.debs"
  (cd "$dir/.debs" && apt-get download -qq -o APT::Sandbox::User=root "$@")
  for deb in "$dir"/.debs/*.deb; do dpkg-deb -x "$deb" "$dir"; done
  rm -rf "$dir/.debs"
}

# apt_sources: the host's apt sources, read at run time, so no mirror is named here.
apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -qv '^[[:space:]]*\(#\|$\)' "$f" && echo "$f"
  done
  return 0
}

docker_root() { docker info -f '{{.DockerRootDir}}'; }

# ---------------------------------------------------------------------------
# run image: busybox from Debian's busybox-static; `sh` at /bin/sh, nothing
# that needs root (the At pods run as 65532 with a restricted context).
build_run_image() {
  local version name tmp applet
  load_apt_versions
  version=$(apt_version busybox-static)
  name=cnat.local/busybox:$(tr '+~' '__' <<<"${version#*:}")
  RESULT=$name
  image_exists "$name" && return 0
  tmp=$(mktemp -d "$CNAT_CACHE/.run-image.XXXXXX")
  CLEANUP+=("rm -rf '$tmp'")
  extract_debs "$tmp/deb" busybox-static
  mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/tmp"
  chmod 1777 "$tmp/rootfs/tmp"
  cp "$tmp/deb/bin/busybox" "$tmp/rootfs/bin/busybox"
  for applet in $("$tmp/rootfs/bin/busybox" --list); do
    [ -e "$tmp/rootfs/bin/$applet" ] || ln -s busybox "$tmp/rootfs/bin/$applet"
  done
  tar -C "$tmp/rootfs" --numeric-owner --owner=0 --group=0 -cf "$tmp/rootfs.tar" .
  docker import -c 'CMD ["sh"]' -c "LABEL $LABEL=busybox-static_$version" \
    -m "busybox-static $version (Debian)" "$tmp/rootfs.tar" "$name" >/dev/null
  log "built $name ($(image_size "$name"))"
  prune_others "$name"
}

# ko base: what a static Go binary needs (CA certificates, tzdata, a non-root
# user 65532), FROM scratch. ko reads it from the daemon because of ko.local/.
build_ko_base() {
  local versions k name tmp
  load_apt_versions
  versions="ca-certificates_$(apt_version ca-certificates) tzdata_$(apt_version tzdata)"
  k=$(declare -f build_ko_base | key "$versions")
  name=ko.local/cnat-static-base:$k
  RESULT=$name
  image_exists "$name" && return 0
  tmp=$(mktemp -d "$CNAT_CACHE/.ko-base.XXXXXX")
  CLEANUP+=("rm -rf '$tmp'")
  extract_debs "$tmp/deb" ca-certificates tzdata
  mkdir -p "$tmp/ctx/rootfs/etc/ssl/certs" "$tmp/ctx/rootfs/usr/share" "$tmp/ctx/rootfs/tmp" "$tmp/ctx/home/nonroot"
  chmod 1777 "$tmp/ctx/rootfs/tmp"
  # what update-ca-certificates would generate from the Mozilla bundle
  cat "$tmp"/deb/usr/share/ca-certificates/mozilla/*.crt >"$tmp/ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
  cp -a "$tmp/deb/usr/share/zoneinfo" "$tmp/ctx/rootfs/usr/share/"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$tmp/ctx/rootfs/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' 'nonroot:x:65532:' >"$tmp/ctx/rootfs/etc/group"
  cat >"$tmp/ctx/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 home/ /home/
USER 65532:65532
LABEL $LABEL=$k org.opencontainers.image.description="static base for ko: $versions (Debian)"
EOF
  dbuild -t "$name" "$tmp/ctx"
  log "built $name ($(image_size "$name"))"
  prune_others "$name"
}

# debian_rootfs NAME VARIANT PACKAGES HOOK: mmdebstrap's tarball, imported as
# NAME. HOOK is a shell command run with the rootfs directory as "$1".
debian_rootfs() {
  local name=$1 variant=$2 packages=$3 hook=$4 tmp sources
  need_tools mmdebstrap
  require_free_gib "$(docker_root)" 2
  mapfile -t sources < <(apt_sources)
  [ ${#sources[@]} -gt 0 ] || die "no apt sources found under /etc/apt"
  tmp=$(mktemp -d "$CNAT_CACHE/.rootfs.XXXXXX")
  CLEANUP+=("rm -rf '$tmp'")
  log "mmdebstrap --variant=$variant $(suite): $packages"
  mmdebstrap --quiet --variant="$variant" --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook="$hook" \
    --customize-hook='rm -rf "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/* "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/* "$1"/tmp/*' \
    "$(suite)" "$tmp/rootfs.tar" "${sources[@]}"
  docker import "$tmp/rootfs.tar" "$name" >/dev/null
  rm -rf "$tmp"
}

# kind-base: kind's base image, made from Debian: the node's packages plus
# kind's own base-image files, with the clean-up of kind's base Dockerfile.
build_kind_base() {
  local files k name import
  files=$(kind_base_files)
  k=$( { declare -f build_kind_base debian_rootfs; cat "$AIRGAP_DIR/kind-base-hook.sh"; } |
    key "$KIND_VERSION" "$(suite)" "${NODE_PACKAGES[*]}")
  name=cnat.local/kind-base:$(suite)-$k
  RESULT=$name
  image_exists "$name" && return 0
  import=cnat.local/kind-base:import-$k
  CLEANUP+=("docker rmi '$import'")
  debian_rootfs "$import" minbase "$(IFS=,; echo "${NODE_PACKAGES[*]}")" \
    "$(printf '%q "$1" %q' "$AIRGAP_DIR/kind-base-hook.sh" "$files")"
  # docker import cannot set STOPSIGNAL; a build on top of the import can.
  dbuild -t "$name" - <<EOF
FROM $import
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
LABEL $LABEL=$k
EOF
  log "built $name ($(image_size "$name"))"
  prune_others "$name"
}

# kube-proxy-base: iptables, nftables and conntrack, with an iptables wrapper
# that follows the node's backend (legacy or nft).
build_kube_proxy_base() {
  local k name import
  k=$( { declare -f build_kube_proxy_base debian_rootfs; cat "$AIRGAP_DIR/iptables-wrapper" "$AIRGAP_DIR/kube-proxy-base-hook.sh"; } |
    key "$(suite)" "${KUBE_PROXY_PACKAGES[*]}")
  name=cnat.local/kube-proxy-base:$(suite)-$k
  RESULT=$name
  image_exists "$name" && return 0
  import=cnat.local/kube-proxy-base:import-$k
  CLEANUP+=("docker rmi '$import'")
  debian_rootfs "$import" essential "$(IFS=,; echo "${KUBE_PROXY_PACKAGES[*]}")" \
    "$(printf '%q "$1"' "$AIRGAP_DIR/kube-proxy-base-hook.sh")"
  dbuild -t "$name" - <<EOF
FROM $import
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL $LABEL=$k
EOF
  log "built $name ($(image_size "$name"))"
  prune_others "$name"
}

# prune_others NAME: removes the other tags of NAME's repository (older
# builds); images still used by a container stay.
prune_others() {
  docker images --format '{{.Repository}}:{{.Tag}}' "${1%:*}" | grep -vxF "$1" |
    xargs -r docker rmi >/dev/null 2>&1 || true
}

image_size() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }

# ---------------------------------------------------------------------------
# node image

# binary COMPONENT: where build-binaries.sh put it.
binary() {
  case "$1" in
    etcd) echo "$ETCD_DIR/etcd" ;;
    coredns) echo "$COREDNS_DIR/coredns" ;;
    pause) echo "$PAUSE_DIR/pause" ;;
    crictl) echo "$CRICTL_DIR/crictl" ;;
    *) echo "$K8S_DIR/$1" ;;
  esac
}

check_binaries() {
  local c missing=()
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl etcd coredns pause crictl; do
    [ -x "$(binary "$c")" ] || missing+=("$(binary "$c")")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing binaries (run hack/build-binaries.sh node): ${missing[*]}"
}

# node_images: "target local" pairs: each image kubeadm names for this
# version, plus kind's sandbox image, and the local name built for it. Checks
# that hack/versions.env builds the versions they ask for.
node_images() {
  local ref comp tag want sandbox
  sandbox=$(sed -n 's/^ *sandbox_image = "\(.*\)"/\1/p' "$(kind_base_files)/etc/containerd/config.toml")
  [ "${sandbox##*:}" = "$KIND_PAUSE_IMAGE_TAG" ] || die "kind's containerd config names $sandbox; versions.env has KIND_PAUSE_IMAGE_TAG=$KIND_PAUSE_IMAGE_TAG"
  for ref in $("$(binary kubeadm)" config images list --kubernetes-version "$K8S_VERSION") "$sandbox"; do
    comp=${ref##*/} && comp=${comp%%:*} && tag=${ref##*:}
    case "$comp" in
      etcd) want=$ETCD_IMAGE_TAG ;;
      coredns) want=$COREDNS_VERSION ;;
      pause) [ "$ref" = "$sandbox" ] && want=$KIND_PAUSE_IMAGE_TAG || want=$PAUSE_IMAGE_TAG ;;
      *) want=$K8S_VERSION ;;
    esac
    [ "$tag" = "$want" ] || die "kubeadm ${K8S_VERSION} asks for $ref but hack/versions.env builds $want: update versions.env"
    echo "$ref cnat.local/k8s/$comp:$tag"
  done
}

# build_component_image COMPONENT LOCAL_NAME KUBE_PROXY_BASE
build_component_image() {
  local comp=$1 name=$2 ctx
  ctx=$(mktemp -d "$CNAT_CACHE/.component.XXXXXX")
  CLEANUP+=("rm -rf '$ctx'")
  cp "$(binary "$comp")" "$ctx/$comp"
  case "$comp" in
    kube-proxy) printf 'FROM %s\nCOPY kube-proxy /usr/local/bin/kube-proxy\n' "$3" ;;
    pause | coredns) printf 'FROM scratch\nCOPY %s /%s\nENTRYPOINT ["/%s"]\n' "$comp" "$comp" "$comp" ;;
    *) printf 'FROM scratch\nCOPY %s /usr/local/bin/%s\nENV PATH=/usr/local/bin:/usr/bin:/bin\nENTRYPOINT ["/usr/local/bin/%s"]\n' \
      "$comp" "$comp" "$comp" ;;
  esac >"$ctx/Dockerfile"
  dbuild -t "$name" "$ctx"
  rm -rf "$ctx"
}

# save_images DIR KUBE_PROXY_BASE PAIRS: the component images as one `docker
# save` archive, unpacked in DIR with the names kubeadm expects (the daemon
# never holds upstream names).
save_images() {
  local dir=$1 proxy_base=$2 pairs=$3 target src comp map='{}' srcs=()
  while read -r target src; do
    comp=${src##*/} && comp=${comp%%:*}
    build_component_image "$comp" "$src" "$proxy_base" # always: a leftover may be stale
    srcs+=("$src")
    map=$(jq -c --arg s "$src" --arg t "$target" '.[$s] = $t' <<<"$map")
  done <<<"$pairs"
  mkdir -p "$dir"
  docker save "${srcs[@]}" | tar -C "$dir" -xf -
  jq --argjson m "$map" 'map(.RepoTags |= map($m[.] // error("unexpected tag \(.)")))' \
    "$dir/manifest.json" >"$dir/manifest.json.new"
  mv "$dir/manifest.json.new" "$dir/manifest.json"
  rm -f "$dir/repositories"
  docker rmi "${srcs[@]}" >/dev/null
}

# node_key BASE KUBE_PROXY_BASE: the node image's inputs.
node_key() {
  {
    declare -f build_node_image save_images build_component_image node_images
    (cd "$AIRGAP_DIR/node" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  } | key "$@" "$K8S_VERSION" "$ETCD_VERSION" "$COREDNS_VERSION" "$CRICTL_VERSION" "$PAUSE_IMAGE_TAG" "$KIND_VERSION"
}

build_node_image() {
  local base proxy_base k name ctr tmp target src c pairs imported
  check_binaries
  pairs=$(node_images)
  build_kind_base
  base=$RESULT
  build_kube_proxy_base
  proxy_base=$RESULT
  k=$(node_key "$base" "$proxy_base")
  name=cnat.local/kind-node:$K8S_VERSION-$k
  RESULT=$name
  image_exists "$name" && return 0
  require_free_gib "$(docker_root)" 4
  tmp=$(mktemp -d "$CNAT_CACHE/.node.XXXXXX")
  CLEANUP+=("rm -rf '$tmp'")
  save_images "$tmp/images" "$proxy_base" "$pairs"

  ctr=cnat-node-build-$k
  docker rm -f "$ctr" >/dev/null 2>&1 || true
  CLEANUP+=("docker rm -f '$ctr'")
  # --init reaps the containerd started below; without it the commit hangs.
  docker run -d --init --name "$ctr" --entrypoint sleep --security-opt seccomp=unconfined "$base" infinity >/dev/null
  for c in kubeadm kubelet kubectl; do docker cp "$(binary "$c")" "$ctr:/usr/bin/$c"; done
  docker cp "$(binary crictl)" "$ctr:/usr/local/bin/crictl"
  docker cp "$AIRGAP_DIR/node/." "$ctr:/"
  docker exec "$ctr" sh -c "echo $K8S_VERSION >/kind/version"

  # import the images into the node's containerd, as kind's node-image builder does
  docker exec -d "$ctr" containerd
  docker exec "$ctr" sh -c 'for i in $(seq 50); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1' ||
    die "containerd did not start in the build container"
  tar -C "$tmp/images" -cf - . | docker exec -i "$ctr" ctr --namespace=k8s.io images import \
    --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - >/dev/null
  imported=$(docker exec "$ctr" ctr --namespace=k8s.io images ls -q)
  while read -r target src; do
    grep -qxF "$target" <<<"$imported" || die "$target missing after import"
  done <<<"$pairs"
  docker exec "$ctr" pkill containerd
  docker exec "$ctr" sh -c 'while pgrep -x containerd >/dev/null; do sleep 0.2; done'

  docker commit -c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' -c 'CMD []' \
    -c "LABEL $LABEL=$k" "$ctr" "$name" >/dev/null
  log "built $name ($(image_size "$name"))"
  prune_others "$name"
}

write_env() {
  local node=$1 ko=$2 run=$3 f=$CNAT_CACHE/images.env
  printf 'KIND_NODE_IMAGE=%s\nKO_DEFAULTBASEIMAGE=%s\nRUN_IMAGE=%s\n' "$node" "$ko" "$run" >"$f.tmp"
  mv "$f.tmp" "$f"
}

case "${1:-}" in
  run-image) build_run_image && echo "$RESULT" ;;
  ko-base) build_ko_base && echo "$RESULT" ;;
  kind-base) build_kind_base && echo "$RESULT" ;;
  kube-proxy-base) build_kube_proxy_base && echo "$RESULT" ;;
  node) build_node_image && echo "$RESULT" ;;
  all)
    build_node_image && node=$RESULT
    build_ko_base && ko=$RESULT
    build_run_image && run=$RESULT
    write_env "$node" "$ko" "$run"
    printf '%s\n' "$node" "$ko" "$run"
    ;;
  prune) # older node images, once no cluster uses them any more
    # shellcheck source=/dev/null
    source "$CNAT_CACHE/images.env" && prune_others "$KIND_NODE_IMAGE"
    ;;
  *) die "usage: $0 run-image|ko-base|kind-base|kube-proxy-base|node|all|prune" ;;
esac
