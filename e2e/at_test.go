package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// The features here need what only a real cluster with the manager as
// deployed gives: a restart of its pod, its metrics endpoint. What a user
// reads as the specification of an At's life is in e2e/chainsaw and
// e2e/kuttl; admission and the reconciler on a real API server are envtest's
// (internal/controller). See the README's "Where does my test go".

// feature starts a feature in its own namespace, labelled for --labels.
func feature(name, area string) *features.FeatureBuilder {
	return features.New(name).WithLabel("area", area).Setup(withNamespace).Teardown(deleteNamespace)
}

func TestManagerRestartMidRun(t *testing.T) {
	f := feature("restarting the manager mid-run neither loses nor repeats the run", "exactly-once").
		Assess("exactly one pod, DONE", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ctx = createAt(ctx, t, cfg, time.Now().Add(2*time.Second), "sleep 6; echo survived")
			running := waitForAt(ctx, t, cfg, "RUNNING", 30*time.Second, phaseIs(cnatv1alpha1.PhaseRunning))
			var managers corev1.PodList
			if err := cfg.Client().Resources(managerNamespace).List(ctx, &managers,
				resources.WithLabelSelector("control-plane=controller-manager")); err != nil || len(managers.Items) == 0 {
				t.Fatalf("finding the manager pod: %v (%d found)", err, len(managers.Items))
			}
			for i := range managers.Items {
				if err := cfg.Client().Resources().Delete(ctx, &managers.Items[i]); err != nil {
					t.Fatalf("deleting manager pod: %v", err)
				}
			}
			done := waitForDone(ctx, t, cfg, cnatv1alpha1.ResultSucceeded, "")
			pod := requireOnePod(ctx, t, cfg, done)
			if pod.Name != running.Status.PodName {
				t.Errorf("DONE with pod %s, but RUNNING named %s", pod.Name, running.Status.PodName)
			}
			if err := wait.For(conditions.New(cfg.Client().Resources()).DeploymentAvailable(managerDeployment, managerNamespace),
				wait.WithTimeout(2*time.Minute)); err != nil {
				t.Errorf("manager not Available again: %v", err)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
