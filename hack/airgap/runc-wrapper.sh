#!/bin/sh
# cnat-runc: installed by hack/docker.sh as Docker's default runtime, only on
# hosts whose capability bounding set lacks capabilities that `--privileged`
# asks for (e.g. CAP_SYS_RESOURCE in some VMs). It removes exactly those
# capabilities from the OCI spec, then runs the real runc unchanged.
#
# runc reads the spec from two places:
#   create/run: <bundle>/config.json, key .process.capabilities
#   exec:       the file given with --process/-p, key .capabilities
set -eu

REAL_RUNC=@REAL_RUNC@
MISSING_CAPS='@MISSING_CAPS@' # JSON array of names, e.g. ["CAP_SYS_RESOURCE"]

# drop_caps FILE JQ_PATH: removes MISSING_CAPS from every capability list at JQ_PATH.
drop_caps() {
  [ -f "$1" ] || return 0
  jq --argjson m "$MISSING_CAPS" \
    "if $2 then $2 |= map_values(if type == \"array\" then map(select(IN(\$m[]) | not)) else . end) else . end" \
    "$1" >"$1.cnat-runc" && mv "$1.cnat-runc" "$1"
}

cmd="" bundle="." process="" prev=""
for arg in "$@"; do
  case "$prev" in
    --bundle | -b) bundle=$arg ;;
    --process | -p) process=$arg ;;
  esac
  case "$arg" in
    --bundle=*) bundle=${arg#--bundle=} ;;
    --process=*) process=${arg#--process=} ;;
    create | run | exec) [ -n "$cmd" ] || cmd=$arg ;;
  esac
  prev=$arg
done

case "$cmd" in
  create | run) drop_caps "$bundle/config.json" .process.capabilities ;;
  exec) [ -z "$process" ] || drop_caps "$process" .capabilities ;;
esac
exec "$REAL_RUNC" "$@"
