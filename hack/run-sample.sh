#!/usr/bin/env bash
# Applies the seed's sample At (config/samples/cnat_v1alpha1_at.yaml) with its
# schedule moved a few seconds ahead, follows it to DONE and prints the
# command's output.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

SAMPLE=$REPO_ROOT/config/samples/cnat_v1alpha1_at.yaml
k() { kubectl --context "$CONTEXT" "$@"; }

schedule=$(date -u -d '+5 seconds' +%Y-%m-%dT%H:%M:%SZ)
k delete at demo --ignore-not-found --wait >/dev/null
sed "s/schedule: \"[^\"]*\"/schedule: \"${schedule}\"/" "$SAMPLE" | k apply -f -
k get at demo
log "waiting for the At to run at ${schedule}"
k wait at/demo --for=jsonpath='{.status.phase}'=DONE --timeout=120s >/dev/null
k get at demo -o wide
result=$(k get at demo -o jsonpath='{.status.result}')
pod=$(k get at demo -o jsonpath='{.status.podName}')
log "pod ${pod} printed:"
k logs "pod/${pod}"
[ "$result" = Succeeded ] || die "the sample At ended ${result}: $(k get at demo -o jsonpath='{.status.reason}: {.status.message}')"
