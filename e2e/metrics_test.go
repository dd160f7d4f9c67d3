package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

func TestMetrics(t *testing.T) {
	f := feature("the metrics endpoint exposes start lag and runs", "observability").
		Assess("cnat_start_lag_seconds and cnat_runs_total after a run", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ctx = createAt(ctx, t, cfg, time.Now(), "true")
			waitForDone(ctx, t, cfg, cnatv1alpha1.ResultSucceeded, "")
			clientset, err := kubernetes.NewForConfig(cfg.Client().RESTConfig())
			if err != nil {
				t.Fatal(err)
			}
			// Through the API server's service proxy: no port-forward needed.
			body, err := clientset.CoreV1().Services(managerNamespace).
				ProxyGet("http", managerDeployment+"-metrics", "metrics", "/metrics", nil).DoRaw(ctx)
			if err != nil {
				t.Fatalf("scraping the manager: %v", err)
			}
			for _, want := range []string{"cnat_start_lag_seconds_bucket", "cnat_start_lag_seconds_count", `cnat_runs_total{result="Succeeded"}`} {
				if !strings.Contains(string(body), want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
