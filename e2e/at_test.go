package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// feature starts a feature in its own namespace, labelled for --labels.
func feature(name, area string) *features.FeatureBuilder {
	return features.New(name).WithLabel("area", area).Setup(withNamespace).Teardown(deleteNamespace)
}

func TestSeedExample(t *testing.T) {
	var schedule time.Time
	f := feature("the seed's At walks PENDING, RUNNING, DONE", "lifecycle").
		Assess("PENDING until the schedule", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			schedule = time.Now().Add(8 * time.Second).Truncate(time.Millisecond)
			ctx = createAt(ctx, t, cfg, schedule, "echo Hello Kubernetes")
			pending := waitForAt(ctx, t, cfg, "PENDING", 30*time.Second, phaseIs(cnatv1alpha1.PhasePending))
			if !pending.Status.ScheduledTime.Time.Equal(schedule) {
				t.Errorf("scheduledTime = %s, want %s", pending.Status.ScheduledTime, schedule)
			}
			if pods := podsOf(ctx, t, cfg, pending); len(pods) != 0 {
				t.Errorf("pod %s exists before the schedule", pods[0].Name)
			}
			return ctx
		}).
		Assess("RUNNING from the schedule on, in one pod", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			started := waitForAt(ctx, t, cfg, "started", 30*time.Second, func(a *cnatv1alpha1.At) bool { return a.Status.StartTime != nil })
			if started.Status.StartTime.Time.Before(schedule) {
				t.Errorf("started at %s, before the schedule %s", started.Status.StartTime, schedule)
			}
			if !meta.IsStatusConditionTrue(started.Status.Conditions, cnatv1alpha1.ConditionStarted) {
				t.Errorf("condition Started not True: %+v", started.Status.Conditions)
			}
			return ctx
		}).
		Assess("DONE, Succeeded, with the command's output", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			done := waitForDone(ctx, t, cfg, cnatv1alpha1.ResultSucceeded, cnatv1alpha1.ReasonSucceeded)
			if ptr.Deref(done.Status.ExitCode, -1) != 0 || done.Status.CompletionTime == nil {
				t.Errorf("status = %+v, want exit code 0 and a completion time", done.Status)
			}
			if out := podLog(ctx, t, cfg, requireOnePod(ctx, t, cfg, done)); !strings.Contains(out, "Hello Kubernetes") {
				t.Errorf("pod log = %q, want the command's output", out)
			}
			return ctx
		}).
		Assess("Events for each transition", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			reasons := eventReasons(ctx, t, cfg, atOf(ctx))
			for _, want := range []string{cnatv1alpha1.ReasonScheduled, cnatv1alpha1.ReasonPodCreated, string(cnatv1alpha1.ResultSucceeded)} {
				if !strings.Contains(reasons, want) {
					t.Errorf("events %q lack %s", reasons, want)
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func TestFailingCommand(t *testing.T) {
	f := feature("a failing command ends Failed with its exit code", "lifecycle").
		Assess("DONE, Failed, exit code 3", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ctx = createAt(ctx, t, cfg, time.Now(), "echo failing >&2; exit 3")
			done := waitForDone(ctx, t, cfg, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonPodFailed)
			if ptr.Deref(done.Status.ExitCode, -1) != 3 {
				t.Errorf("exit code = %v, want 3", done.Status.ExitCode)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func TestActiveDeadline(t *testing.T) {
	f := feature("activeDeadlineSeconds stops a command that runs too long", "lifecycle").
		Assess("DONE, Failed, DeadlineExceeded", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ctx = createAt(ctx, t, cfg, time.Now(), "sleep 300", func(a *cnatv1alpha1.At) { a.Spec.ActiveDeadlineSeconds = ptr.To[int64](2) })
			waitForDone(ctx, t, cfg, cnatv1alpha1.ResultFailed, "DeadlineExceeded")
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func TestPastSchedule(t *testing.T) {
	f := feature("a schedule already past runs at once", "timing").
		Assess("DONE, Succeeded", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ctx = createAt(ctx, t, cfg, time.Now().Add(-time.Hour), "true")
			done := waitForDone(ctx, t, cfg, cnatv1alpha1.ResultSucceeded, "")
			requireOnePod(ctx, t, cfg, done)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func TestMissedStartingDeadline(t *testing.T) {
	f := feature("past startingDeadlineSeconds the At is Missed", "timing").
		Assess("DONE, Missed, no pod", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ctx = createAt(ctx, t, cfg, time.Now().Add(-time.Hour), "true",
				func(a *cnatv1alpha1.At) { a.Spec.StartingDeadlineSeconds = ptr.To[int64](60) })
			done := waitForDone(ctx, t, cfg, cnatv1alpha1.ResultMissed, cnatv1alpha1.ReasonMissedStartingDeadline)
			if pods := podsOf(ctx, t, cfg, done); len(pods) != 0 {
				t.Errorf("a missed At created pod %s", pods[0].Name)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func TestRetimeWhilePending(t *testing.T) {
	f := feature("a schedule edited while PENDING is retimed", "timing").
		Assess("runs at the new schedule", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ctx = createAt(ctx, t, cfg, time.Now().Add(time.Hour), "true")
			pending := waitForAt(ctx, t, cfg, "PENDING", 30*time.Second, phaseIs(cnatv1alpha1.PhasePending))
			newSchedule := time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
			pending.Spec.Schedule = newSchedule.UTC().Format(time.RFC3339Nano)
			if err := cfg.Client().Resources().Update(ctx, pending); err != nil {
				t.Fatalf("editing the schedule while PENDING: %v", err)
			}
			done := waitForDone(ctx, t, cfg, cnatv1alpha1.ResultSucceeded, "")
			if !done.Status.ScheduledTime.Time.Equal(newSchedule) || done.Status.StartTime.Time.Before(newSchedule) {
				t.Errorf("scheduled %s, started %s; want the new schedule %s", done.Status.ScheduledTime, done.Status.StartTime, newSchedule)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func TestSpecImmutableOnceRunning(t *testing.T) {
	f := feature("the spec cannot change once RUNNING", "admission").
		Assess("the API server refuses the edit", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ctx = createAt(ctx, t, cfg, time.Now(), "sleep 30")
			running := waitForAt(ctx, t, cfg, "RUNNING", 30*time.Second, phaseIs(cnatv1alpha1.PhaseRunning))
			running.Spec.Command = "echo changed"
			err := cfg.Client().Resources().Update(ctx, running)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec is immutable") {
				t.Errorf("edit of a RUNNING At: err = %v, want Invalid: spec is immutable", err)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func TestOwnedPodDeleted(t *testing.T) {
	f := feature("deleting the At's pod mid-run fails it, never reruns it", "exactly-once").
		Assess("DONE, Failed, PodDeleted, no second pod", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ctx = createAt(ctx, t, cfg, time.Now(), "sleep 300")
			running := waitForAt(ctx, t, cfg, "RUNNING", 30*time.Second, phaseIs(cnatv1alpha1.PhaseRunning))
			pod := requireOnePod(ctx, t, cfg, running)
			if err := cfg.Client().Resources().Delete(ctx, &pod); err != nil {
				t.Fatalf("deleting pod: %v", err)
			}
			done := waitForDone(ctx, t, cfg, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonPodDeleted)
			err := wait.For(conditions.New(cfg.Client().Resources()).ResourceDeleted(&pod), wait.WithTimeout(time.Minute))
			if err != nil {
				t.Fatalf("pod %s not gone: %v", pod.Name, err)
			}
			if pods := podsOf(ctx, t, cfg, done); len(pods) != 0 {
				t.Errorf("a second pod %s was created", pods[0].Name)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
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

func TestTTLAfterFinished(t *testing.T) {
	f := feature("ttlSecondsAfterFinished deletes the At and its pod", "cleanup").
		Assess("both gone after the TTL", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ctx = createAt(ctx, t, cfg, time.Now(), "true", func(a *cnatv1alpha1.At) { a.Spec.TTLSecondsAfterFinished = ptr.To[int32](3) })
			done := waitForDone(ctx, t, cfg, cnatv1alpha1.ResultSucceeded, "")
			pod := requireOnePod(ctx, t, cfg, done)
			r := conditions.New(cfg.Client().Resources())
			for _, gone := range []func() error{
				func() error { return wait.For(r.ResourceDeleted(done), wait.WithTimeout(time.Minute)) },
				func() error { return wait.For(r.ResourceDeleted(&pod), wait.WithTimeout(time.Minute)) },
			} {
				if err := gone(); err != nil {
					t.Fatalf("not cleaned up after the TTL: %v", err)
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
