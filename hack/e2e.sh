#!/usr/bin/env bash
# End-to-end tests on kind: brings the cluster up (reused when warm), then runs
# the e2e-framework features (which deploy the ko-built manager), the chainsaw
# suites and the kuttl cases against it. JUnit reports go to $ARTIFACTS and are
# summed up in one closing line. Every tier runs even if an earlier one fails;
# the exit code says whether everything passed.
#
# Extra arguments go to the e2e-framework run, e.g. hack/e2e.sh -args --labels area=exactly-once
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

ARTIFACTS=${ARTIFACTS:-$REPO_ROOT/_artifacts}
REPORTS=("$ARTIFACTS/junit-e2e-framework.xml" "$ARTIFACTS/junit-chainsaw.xml" "$ARTIFACTS/junit-kuttl.xml")
mkdir -p "$ARTIFACTS"
# A report left by an earlier run must not stand in for one this run failed to write.
rm -f "${REPORTS[@]}"
cd "$REPO_ROOT"

step "cluster up (hack/cluster.sh up)" "$HACK_DIR/cluster.sh" up
cluster_env
CHAINSAW=$("$HACK_DIR/tools.sh" chainsaw)
KUTTL=$("$HACK_DIR/tools.sh" kuttl)
# The e2e-framework run leaves the cluster to chainsaw, kuttl and the next run.
export E2E_KEEP_CLUSTER=1 ARTIFACTS

# kuttl talks to the current context of $KUBECONFIG, and writes a file called
# kubeconfig into its working directory: it runs in a directory of its own,
# with a kubeconfig that holds only this cluster.
KUTTL_DIR=$(mktemp -d)
trap 'rm -rf "$KUTTL_DIR"' EXIT
go run ./hack/kind-cluster kubeconfig >"$KUTTL_DIR/cluster.kubeconfig"

rc=0
(step "e2e-framework features (go test ./e2e/)" go tool gotestsum --format standard-verbose \
  --junitfile "${REPORTS[0]}" -- -count=1 -timeout 30m ./e2e/ "$@") || rc=1
(step "chainsaw suites (e2e/chainsaw)" "$CHAINSAW" test --config e2e/chainsaw/.chainsaw.yaml \
  --kube-context "$CONTEXT" --report-path "$ARTIFACTS" e2e/chainsaw) || rc=1
(cd "$KUTTL_DIR" && step "kuttl cases (e2e/kuttl)" env KUBECONFIG="$KUTTL_DIR/cluster.kubeconfig" "$KUTTL" test \
  --config "$REPO_ROOT/e2e/kuttl/kuttl-test.yaml" --report xml --report-name junit-kuttl --report-granularity test \
  --artifacts-dir "$ARTIFACTS" "$REPO_ROOT/e2e/kuttl") || rc=1
go run ./hack/junit-summary "${REPORTS[@]}" || rc=1
exit "$rc"
