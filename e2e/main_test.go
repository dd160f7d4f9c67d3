// Package e2e runs the operator on a real kind cluster: the manager built by
// ko and deployed from config/, Ats whose pods really run.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/types"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/e2e/cluster"
)

const (
	managerNamespace  = "cnat-system"
	managerDeployment = "cnat-controller-manager"
	crdName           = "ats.cnat.programming-kubernetes.info"
)

var (
	testenv env.Environment
	// kindCluster is the cluster hack/cluster.sh env describes (make e2e
	// exports it), under the same rules as make cluster.
	kindCluster *cluster.Cluster
	failed      atomic.Bool
)

func TestMain(m *testing.M) {
	cfg, err := envconf.NewFromFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e flags:", err)
		os.Exit(2)
	}
	kindCluster = cluster.FromEnv(filepath.Join("..", "hack", "kind-config.yaml"))
	testenv = env.NewWithConfig(cfg)
	testenv.Setup(
		// Reuses the cluster when it is healthy (make e2e brings it up first).
		clusterUp,
		deployManager,
		waitForCRD,
		waitForManager,
	)
	testenv.AfterEachFeature(func(ctx context.Context, _ *envconf.Config, t *testing.T, _ types.Feature) (context.Context, error) {
		if t.Failed() {
			failed.Store(true)
		}
		return ctx, nil
	})
	testenv.Finish(exportLogsOnFailure, destroyUnlessKept)
	os.Exit(testenv.Run(m))
}

// clusterUp brings the cluster up and points the tests at it through a
// kubeconfig of its own.
func clusterUp(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
	if err := kindCluster.Up(ctx); err != nil {
		return ctx, err
	}
	raw, err := kindCluster.Kubeconfig()
	if err != nil {
		return ctx, err
	}
	path := filepath.Join(os.TempDir(), "cnat-e2e-kubeconfig-"+kindCluster.Name)
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		return ctx, err
	}
	cfg.WithKubeconfigFile(path)
	return ctx, nil
}

// deployManager builds the manager with ko into the cluster and applies
// config/default, exactly as `make deploy` does.
func deployManager(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
	cmd := exec.CommandContext(ctx, filepath.Join("..", "hack", "deploy.sh"))
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cfg.KubeconfigFile())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return ctx, fmt.Errorf("hack/deploy.sh: %w", err)
	}
	return ctx, nil
}

func waitForCRD(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
	r := cfg.Client().Resources()
	if err := apiextensionsv1.AddToScheme(r.GetScheme()); err != nil {
		return ctx, err
	}
	if err := cnatv1alpha1.AddToScheme(r.GetScheme()); err != nil {
		return ctx, err
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	crd.Name = crdName
	established := func(obj k8s.Object) bool {
		for _, c := range obj.(*apiextensionsv1.CustomResourceDefinition).Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true
			}
		}
		return false
	}
	err := wait.For(conditions.New(r).ResourceMatch(crd, established), wait.WithTimeout(time.Minute), wait.WithContext(ctx))
	if err != nil {
		return ctx, fmt.Errorf("CRD %s not Established: %w", crdName, err)
	}
	return ctx, nil
}

func waitForManager(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
	err := wait.For(conditions.New(cfg.Client().Resources()).DeploymentAvailable(managerDeployment, managerNamespace),
		wait.WithTimeout(3*time.Minute), wait.WithContext(ctx))
	if err != nil {
		return ctx, fmt.Errorf("deployment %s/%s not Available: %w", managerNamespace, managerDeployment, err)
	}
	return ctx, nil
}

func exportLogsOnFailure(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	if !failed.Load() {
		return ctx, nil
	}
	dest := filepath.Join(envOr("ARTIFACTS", filepath.Join("..", "_artifacts")), "kind-logs")
	fmt.Fprintln(os.Stderr, "a feature failed: exporting cluster logs to", dest)
	return ctx, kindCluster.ExportLogs(dest)
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// destroyUnlessKept deletes the cluster unless E2E_KEEP_CLUSTER is set, as
// make e2e does so that chainsaw, kuttl and the next run reuse it.
func destroyUnlessKept(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	if os.Getenv("E2E_KEEP_CLUSTER") != "" {
		return ctx, nil
	}
	return ctx, kindCluster.Down()
}
