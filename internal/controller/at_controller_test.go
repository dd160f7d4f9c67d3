package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

const timeout = 15 * time.Second

func createAt(t *testing.T, c client.Client, ns string, schedule time.Time, mutate ...func(*cnatv1alpha1.At)) *cnatv1alpha1.At {
	t.Helper()
	obj := &cnatv1alpha1.At{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: ns},
		Spec:       cnatv1alpha1.AtSpec{Schedule: schedule.Format(time.RFC3339Nano), Command: "echo Hello Kubernetes"},
	}
	for _, m := range mutate {
		m(obj)
	}
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating At: %v", err)
	}
	return obj
}

// waitFor waits until the At satisfies done, and returns it.
func waitFor(t *testing.T, c client.Client, obj *cnatv1alpha1.At, what string, done func(*cnatv1alpha1.At) bool) *cnatv1alpha1.At {
	t.Helper()
	got := &cnatv1alpha1.At{}
	eventually(t, timeout, what, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
			return false, err
		}
		return done(got), nil
	})
	return got
}

// reschedule edits the schedule of obj (which must be PENDING).
func reschedule(t *testing.T, c client.Client, obj *cnatv1alpha1.At, schedule time.Time) {
	t.Helper()
	patch := client.MergeFrom(obj.DeepCopy())
	obj.Spec.Schedule = schedule.Format(time.RFC3339Nano)
	if err := c.Patch(context.Background(), obj, patch); err != nil {
		t.Fatalf("editing the schedule while PENDING: %v", err)
	}
}

func inPhase(phase cnatv1alpha1.Phase) func(*cnatv1alpha1.At) bool {
	return func(a *cnatv1alpha1.At) bool { return a.Status.Phase == phase }
}

func runPod(t *testing.T, c client.Client, obj *cnatv1alpha1.At) *corev1.Pod {
	t.Helper()
	running := waitFor(t, c, obj, "RUNNING", inPhase(cnatv1alpha1.PhaseRunning))
	pod := &corev1.Pod{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: obj.Namespace, Name: running.Status.PodName}, pod); err != nil {
		t.Fatalf("RUNNING names pod %q: %v", running.Status.PodName, err)
	}
	return pod
}

// finishPod plays the kubelet, which envtest does not run.
func finishPod(t *testing.T, c client.Client, pod *corev1.Pod, phase corev1.PodPhase, exitCode int32) {
	t.Helper()
	pod.Status.Phase = phase
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: at.ContainerName, Image: pod.Spec.Containers[0].Image, ImageID: "x",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode, Reason: "Error"}},
	}}
	if err := c.Status().Update(context.Background(), pod); err != nil {
		t.Fatalf("writing pod status: %v", err)
	}
}

func podsOf(t *testing.T, c client.Client, obj *cnatv1alpha1.At) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := c.List(context.Background(), &pods, client.InNamespace(obj.Namespace)); err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	return pods.Items
}

func waitForEvent(t *testing.T, c client.Client, obj *cnatv1alpha1.At, reason string) {
	t.Helper()
	eventually(t, timeout, "event "+reason, func(ctx context.Context) (bool, error) {
		var events eventsv1.EventList
		if err := c.List(ctx, &events, client.InNamespace(obj.Namespace)); err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == obj.Name && e.Reason == reason {
				return true, nil
			}
		}
		return false, nil
	})
}

// The wiring on a real API server: PENDING records the exact schedule for the
// generation it saw; at the schedule the At's deterministic pod is created
// with a controller reference and the manager's default image; the pod's end
// makes the At DONE, with no second pod. What a user sees of that walk on a
// real kubelet (exit code, conditions, Events, output) is the chainsaw suites'.
func TestFutureScheduleWalksPendingRunningDone(t *testing.T) {
	ns := newNamespace(t, k8sClient)
	schedule := time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
	obj := createAt(t, k8sClient, ns, schedule)

	pending := waitFor(t, k8sClient, obj, "PENDING", inPhase(cnatv1alpha1.PhasePending))
	if !pending.Status.ScheduledTime.Time.Equal(schedule) || pending.Status.ObservedGeneration != 1 {
		t.Errorf("PENDING status = %+v, want scheduledTime %s and observedGeneration 1", pending.Status, schedule)
	}
	if pods := podsOf(t, k8sClient, obj); len(pods) != 0 {
		t.Fatalf("a pod exists before the schedule: %s", pods[0].Name)
	}

	pod := runPod(t, k8sClient, obj)
	running := waitFor(t, k8sClient, obj, "RUNNING", inPhase(cnatv1alpha1.PhaseRunning))
	if running.Status.StartTime.Time.Before(schedule) {
		t.Errorf("started at %s, before the schedule %s", running.Status.StartTime.Time, schedule)
	}
	if pod.Name != at.PodName(running) || !metav1.IsControlledBy(pod, running) {
		t.Errorf("pod %s is not the At's deterministic, controlled pod", pod.Name)
	}
	if got := pod.Spec.Containers[0].Image; got != "test-image:1" {
		t.Errorf("pod image = %q, want the manager's default image", got)
	}

	finishPod(t, k8sClient, pod, corev1.PodSucceeded, 0)
	waitFor(t, k8sClient, obj, "DONE", inPhase(cnatv1alpha1.PhaseDone))
	if pods := podsOf(t, k8sClient, obj); len(pods) != 1 {
		t.Errorf("%d pods for one At, want exactly 1", len(pods))
	}
}

// status.phase and status.result are the CRD's selectable fields:
// kubectl get at --field-selector status.result=Missed.
func TestPhaseAndResultAreSelectableFields(t *testing.T) {
	ns := newNamespace(t, k8sClient)
	// A missed At is DONE at once, with no pod for the test to play the kubelet for.
	obj := createAt(t, k8sClient, ns, time.Now().Add(-time.Hour), func(a *cnatv1alpha1.At) {
		a.Spec.StartingDeadlineSeconds = ptr.To[int64](60)
	})
	waitFor(t, k8sClient, obj, "DONE", inPhase(cnatv1alpha1.PhaseDone))
	for fields, want := range map[string]int{"status.phase=DONE": 1, "status.result=Missed": 1, "status.phase=PENDING": 0} {
		name, value, _ := strings.Cut(fields, "=")
		var ats cnatv1alpha1.AtList
		if err := k8sClient.List(context.Background(), &ats, client.InNamespace(ns), client.MatchingFields{name: value}); err != nil {
			t.Fatalf("listing Ats by %s: %v", fields, err)
		}
		if len(ats.Items) != want {
			t.Errorf("--field-selector %s lists %d Ats, want %d", fields, len(ats.Items), want)
		}
	}
}

func TestSpecIsImmutableOnceRunning(t *testing.T) {
	ns := newNamespace(t, k8sClient)
	obj := createAt(t, k8sClient, ns, time.Now())
	running := waitFor(t, k8sClient, obj, "RUNNING", inPhase(cnatv1alpha1.PhaseRunning))
	running.Spec.Command = "echo something else"
	err := k8sClient.Update(context.Background(), running)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec is immutable once status.phase is RUNNING or DONE") {
		t.Fatalf("editing the spec of a RUNNING At: err = %v, want Invalid naming the immutable spec", err)
	}
}

// A manager that created the pod and stopped before recording RUNNING leaves
// a PENDING At with its pod. That pod's appearance in the cache alone (no
// schedule reached, no spec change) makes the At RUNNING, naming that pod,
// and no other pod is created.
func TestExistingPodIsRecordedAsRunningNotDuplicated(t *testing.T) {
	ns := newNamespace(t, k8sClient)
	obj := createAt(t, k8sClient, ns, time.Now().Add(time.Hour))
	pending := waitFor(t, k8sClient, obj, "PENDING", inPhase(cnatv1alpha1.PhasePending))
	earlier := at.PodFor(pending, "test-image:1", time.Now())
	if err := k8sClient.Create(context.Background(), earlier); err != nil {
		t.Fatalf("creating the earlier manager's pod: %v", err)
	}
	pod := runPod(t, k8sClient, obj)
	if pod.UID != earlier.UID {
		t.Errorf("RUNNING names pod %s/%s, want the existing pod %s", pod.Name, pod.UID, earlier.UID)
	}
	if pods := podsOf(t, k8sClient, obj); len(pods) != 1 {
		t.Errorf("%d pods, want exactly the one that existed", len(pods))
	}
}

func TestForeignPodWithTheSameNameIsAConflict(t *testing.T) {
	ns := newNamespace(t, k8sClient)
	obj := createAt(t, k8sClient, ns, time.Now().Add(time.Hour))
	pending := waitFor(t, k8sClient, obj, "PENDING", inPhase(cnatv1alpha1.PhasePending))
	foreign := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: at.PodName(pending), Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "other", Image: "other:1"}}},
	}
	if err := k8sClient.Create(context.Background(), foreign); err != nil {
		t.Fatalf("creating the foreign pod: %v", err)
	}
	reschedule(t, k8sClient, pending, time.Now())
	done := waitFor(t, k8sClient, obj, "DONE", inPhase(cnatv1alpha1.PhaseDone))
	if done.Status.Result != cnatv1alpha1.ResultFailed || done.Status.Reason != cnatv1alpha1.ReasonPodConflict ||
		!strings.Contains(done.Status.Message, foreign.Name) {
		t.Errorf("status = %+v, want Failed / %s naming pod %s", done.Status, cnatv1alpha1.ReasonPodConflict, foreign.Name)
	}
	still := &corev1.Pod{}
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(foreign), still); err != nil || still.UID != foreign.UID {
		t.Errorf("the foreign pod was touched: %v", err)
	}
}
