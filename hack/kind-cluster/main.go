// Command kind-cluster brings the project's kind cluster up or down by the
// rules of package e2e/cluster, the same ones the e2e tests' TestMain follows.
// hack/cluster.sh runs it once the node and run images exist; `make cluster`
// runs that. Run it from the repository's root.
//
//	kind-cluster up          reuse, recreate or create the cluster; wait until it is Ready; load $RUN_IMAGE
//	kind-cluster down        delete the cluster
//	kind-cluster kubeconfig  print a kubeconfig for the cluster alone
//
// The cluster is $KIND_CLUSTER_NAME (default cnat) on $KIND_NODE_IMAGE, made
// from hack/kind-config.yaml; hack/cluster.sh env prints both.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/programming-kubernetes/cnat/e2e/cluster"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kind-cluster up|down|kubeconfig")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "kind-cluster:", err)
		os.Exit(1)
	}
}

func run(command string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := cluster.FromEnv(filepath.Join("hack", "kind-config.yaml"))
	switch command {
	case "up":
		return c.Up(ctx)
	case "down":
		return c.Down()
	case "kubeconfig":
		raw, err := c.Kubeconfig()
		if err == nil {
			fmt.Print(raw)
		}
		return err
	default:
		return fmt.Errorf("unknown command %q (want up, down or kubeconfig)", command)
	}
}
