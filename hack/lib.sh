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
