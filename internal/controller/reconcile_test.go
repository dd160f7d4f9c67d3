package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

// These tests call Reconcile directly on a fake client with a fake clock, to
// control time and inject API errors exactly.

var fixedSchedule = time.Date(2026, 2, 10, 20, 35, 0, 0, time.UTC)

func fakeReconciler(t *testing.T, now time.Time, funcs interceptor.Funcs) (*AtReconciler, *clocktesting.FakeClock, ctrl.Request) {
	t.Helper()
	obj := &cnatv1alpha1.At{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "ns", UID: "uid-1", Generation: 1},
		Spec:       cnatv1alpha1.AtSpec{Schedule: fixedSchedule.Format(time.RFC3339), Command: "echo hi"},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(obj).
		WithStatusSubresource(obj).WithIndex(&corev1.Pod{}, podOwnerIndex, ownerAtName).WithInterceptorFuncs(funcs).Build()
	clock := clocktesting.NewFakeClock(now)
	r := &AtReconciler{Client: c, APIReader: c, Clock: clock, Recorder: &events.FakeRecorder{}, DefaultImage: "img"}
	return r, clock, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(obj)}
}

func reconcileOnce(t *testing.T, r *AtReconciler, req ctrl.Request) (ctrl.Result, *cnatv1alpha1.At, []corev1.Pod, error) {
	t.Helper()
	result, err := r.Reconcile(context.Background(), req)
	obj := &cnatv1alpha1.At{}
	if getErr := r.Client.Get(context.Background(), req.NamespacedName, obj); getErr != nil {
		t.Fatal(getErr)
	}
	var pods corev1.PodList
	if listErr := r.Client.List(context.Background(), &pods); listErr != nil {
		t.Fatal(listErr)
	}
	return result, obj, pods.Items, err
}

func TestReconcileStartsExactlyAtTheScheduleOfTheInjectedClock(t *testing.T) {
	r, clock, req := fakeReconciler(t, fixedSchedule.Add(-10*time.Second), interceptor.Funcs{})

	result, obj, pods, err := reconcileOnce(t, r, req)
	if err != nil || result.RequeueAfter != 10*time.Second || obj.Status.Phase != cnatv1alpha1.PhasePending || len(pods) != 0 {
		t.Fatalf("10s before: result=%+v phase=%s pods=%d err=%v; want PENDING, requeue after exactly 10s, no pod",
			result, obj.Status.Phase, len(pods), err)
	}
	if result.Priority == nil || *result.Priority != 0 {
		t.Errorf("wake-up priority = %v, want 0: ahead of the low-priority pod events", result.Priority)
	}

	clock.Step(10*time.Second - time.Millisecond) // the timer fired a little early
	result, obj, pods, err = reconcileOnce(t, r, req)
	if err != nil || result.RequeueAfter != time.Millisecond || obj.Status.Phase != cnatv1alpha1.PhasePending || len(pods) != 0 {
		t.Fatalf("1ms before: result=%+v phase=%s pods=%d err=%v; want still PENDING, a requeue for the remaining 1ms and no pod",
			result, obj.Status.Phase, len(pods), err)
	}

	clock.Step(time.Millisecond)
	result, obj, pods, err = reconcileOnce(t, r, req)
	if err != nil || obj.Status.Phase != cnatv1alpha1.PhasePending || len(pods) != 1 || result != (ctrl.Result{}) {
		t.Fatalf("at the schedule: result=%+v phase=%s pods=%d err=%v; want one pod, no status write yet (the pod's event brings RUNNING)",
			result, obj.Status.Phase, len(pods), err)
	}

	clock.Step(time.Second) // the pod's event, queued behind other due Ats
	_, obj, pods, err = reconcileOnce(t, r, req)
	if err != nil || obj.Status.Phase != cnatv1alpha1.PhaseRunning || len(pods) != 1 || !obj.Status.StartTime.Time.Equal(fixedSchedule) {
		t.Fatalf("pod seen: phase=%s pods=%d startTime=%v err=%v; want RUNNING with one pod started at %s",
			obj.Status.Phase, len(pods), obj.Status.StartTime, err, fixedSchedule)
	}
}

func TestStatusConflictIsRetriedWithoutASecondPod(t *testing.T) {
	conflicts := 1
	r, _, req := fakeReconciler(t, fixedSchedule, interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if conflicts > 0 {
				conflicts--
				return apierrors.NewConflict(schema.GroupResource{Resource: "ats"}, obj.GetName(), errors.New("the object has been modified"))
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})

	_, _, pods, err := reconcileOnce(t, r, req)
	if err != nil || len(pods) != 1 {
		t.Fatalf("at the schedule: err=%v pods=%d; want the pod created", err, len(pods))
	}
	_, obj, pods, err := reconcileOnce(t, r, req)
	if !apierrors.IsConflict(err) || len(pods) != 1 || obj.Status.Phase != "" {
		t.Fatalf("recording RUNNING: err=%v pods=%d phase=%q; want the conflict returned (so it is retried), no status", err, len(pods), obj.Status.Phase)
	}
	_, obj, pods, err = reconcileOnce(t, r, req)
	if err != nil || len(pods) != 1 || obj.Status.Phase != cnatv1alpha1.PhaseRunning || obj.Status.PodName != pods[0].Name {
		t.Fatalf("retry: err=%v pods=%d status=%+v; want RUNNING naming the one pod", err, len(pods), obj.Status)
	}
}

// The status write between Decide and the requeue takes time; the wake-up
// must still be at the schedule, not that much after it.
func TestRequeueDiscountsTimeSpentWriting(t *testing.T) {
	var clock *clocktesting.FakeClock
	r, clock, req := fakeReconciler(t, fixedSchedule.Add(-10*time.Second), interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			clock.Step(15 * time.Millisecond)
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	result, _, _, err := reconcileOnce(t, r, req)
	if err != nil || result.RequeueAfter != 10*time.Second-15*time.Millisecond {
		t.Fatalf("result=%+v err=%v; want a requeue after 10s minus the 15ms the write took", result, err)
	}
}

// A pod deleted between its creation and RUNNING stays, held by the run
// finalizer, until its At has recorded it: no reconcile, by this manager or a
// new one with an empty memory, can mistake it for a pod never created.
func TestPodDeletedBeforeRunningWasRecordedEndsTheAtWithoutASecondPod(t *testing.T) {
	creates := 0
	r, _, req := fakeReconciler(t, fixedSchedule, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			err := c.Create(ctx, obj, opts...)
			if err == nil {
				creates++
			}
			return err
		},
	})
	_, _, pods, err := reconcileOnce(t, r, req)
	if err != nil || len(pods) != 1 || !at.HasRunFinalizer(&pods[0]) {
		t.Fatalf("at the schedule: err=%v pods=%d; want the pod created with the run finalizer", err, len(pods))
	}
	if err := r.Client.Delete(context.Background(), &pods[0], client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	restarted := &AtReconciler{Client: r.Client, APIReader: r.Client, Clock: r.Clock, Recorder: r.Recorder, DefaultImage: r.DefaultImage}
	_, obj, pods, err := reconcileOnce(t, restarted, req)
	if err != nil || len(pods) != 0 || obj.Status.Phase != cnatv1alpha1.PhaseDone || obj.Status.Reason != cnatv1alpha1.ReasonPodDeleted {
		t.Fatalf("pod deleted: err=%v pods=%d status=%+v; want DONE PodDeleted and the pod released", err, len(pods), obj.Status)
	}
	if _, _, _, err := reconcileOnce(t, restarted, req); err != nil || creates != 1 {
		t.Fatalf("once more: err=%v, %d creates; want exactly 1", err, creates)
	}
}

// A create whose answer is lost (a timeout) may still have made the pod: the
// retry finds it by its name and adopts it.
func TestCreateThatTimedOutIsAdoptedNotRepeated(t *testing.T) {
	timeouts := 1
	r, _, req := fakeReconciler(t, fixedSchedule, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := c.Create(ctx, obj, opts...); err != nil {
				return err
			}
			if timeouts > 0 {
				timeouts--
				return apierrors.NewTimeoutError("request did not complete", 1)
			}
			return nil
		},
	})
	if _, _, pods, err := reconcileOnce(t, r, req); !apierrors.IsTimeout(err) || len(pods) != 1 {
		t.Fatalf("first create: err=%v pods=%d; want the timeout returned for a retry, and the pod made", err, len(pods))
	}
	_, obj, pods, err := reconcileOnce(t, r, req)
	if err != nil || len(pods) != 1 || obj.Status.Phase != cnatv1alpha1.PhaseRunning || obj.Status.PodName != pods[0].Name {
		t.Fatalf("retry: err=%v pods=%d status=%+v; want RUNNING naming the one pod", err, len(pods), obj.Status)
	}
}

// A refused create is said once in the status and as a Warning, then retried
// with a backoff that doubles, without writing again, until the starting
// deadline ends the At as Missed with the refusal in its message.
func TestRefusedCreateIsReportedOnceAndRetriedUntilTheStartingDeadline(t *testing.T) {
	writes := 0
	r, clock, req := fakeReconciler(t, fixedSchedule, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, obj.GetName(), errors.New("exceeded quota: pods=0"))
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			writes++
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	recorder := events.NewFakeRecorder(10)
	r.Recorder = recorder
	obj := &cnatv1alpha1.At{}
	if err := r.Client.Get(context.Background(), req.NamespacedName, obj); err != nil {
		t.Fatal(err)
	}
	obj.Spec.StartingDeadlineSeconds = ptr.To[int64](20)
	if err := r.Client.Update(context.Background(), obj); err != nil {
		t.Fatal(err)
	}

	result, obj, pods, err := reconcileOnce(t, r, req)
	held := meta.FindStatusCondition(obj.Status.Conditions, cnatv1alpha1.ConditionHeld)
	if err != nil || len(pods) != 0 || held == nil || held.Reason != cnatv1alpha1.ReasonFailedCreate ||
		!strings.Contains(held.Message, "exceeded quota") || result.RequeueAfter != time.Second {
		t.Fatalf("refused: err=%v result=%+v held=%+v; want Held FailedCreate with the API server's message, retry in 1s", err, result, held)
	}
	if e := <-recorder.Events; !strings.Contains(e, "Warning FailedCreate") || !strings.Contains(e, "exceeded quota") {
		t.Errorf("event %q, want a FailedCreate Warning with the message", e)
	}
	// Each retry waits as long as the refusal has lasted: 1s, 2s, 4s, 8s.
	elapsed := time.Duration(0)
	for _, step := range []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second} {
		clock.Step(step)
		elapsed += step
		result, _, _, err = reconcileOnce(t, r, req)
		if err != nil || result.RequeueAfter != elapsed {
			t.Fatalf("retry %s after the refusal: err=%v result=%+v; want a wait of %s", elapsed, err, result, elapsed)
		}
	}
	if writes != 1 || len(recorder.Events) != 0 {
		t.Errorf("%d status writes, %d more events; want the refusal said once", writes, len(recorder.Events))
	}
	clock.Step(16 * time.Second)
	_, obj, _, err = reconcileOnce(t, r, req)
	if err != nil || obj.Status.Result != cnatv1alpha1.ResultMissed || !strings.Contains(obj.Status.Message, "FailedCreate") {
		t.Fatalf("past the deadline: err=%v status=%+v; want Missed naming FailedCreate", err, obj.Status)
	}
}

// A pod that ended before its RUNNING was recorded sends no further event:
// one reconcile writes RUNNING and then DONE, the second write based on the
// first (the cache has not seen it yet), so neither conflicts.
func TestPodEndedBeforeRunningWasRecordedWalksRunningThenDone(t *testing.T) {
	var written []cnatv1alpha1.Phase
	r, _, req := fakeReconciler(t, fixedSchedule, interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			written = append(written, obj.(*cnatv1alpha1.At).Status.Phase)
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	_, _, pods, err := reconcileOnce(t, r, req)
	if err != nil || len(pods) != 1 {
		t.Fatalf("at the schedule: err=%v pods=%d; want the pod created", err, len(pods))
	}
	pod := &pods[0]
	pod.Status.Phase = corev1.PodSucceeded
	if err := r.Client.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	_, obj, _, err := reconcileOnce(t, r, req)
	if err != nil || obj.Status.Phase != cnatv1alpha1.PhaseDone || obj.Status.Result != cnatv1alpha1.ResultSucceeded {
		t.Fatalf("err=%v status=%+v; want DONE Succeeded", err, obj.Status)
	}
	if len(written) != 2 || written[0] != cnatv1alpha1.PhaseRunning || written[1] != cnatv1alpha1.PhaseDone {
		t.Errorf("status writes %v, want [RUNNING DONE]", written)
	}
}

// The dry run costs an At without a template nothing, and one with a
// template one request per spec generation.
func TestDryRunOnlyForATemplateAndOncePerSpec(t *testing.T) {
	for _, tc := range []struct {
		name     string
		template *corev1.PodTemplateSpec
		want     int
	}{
		{"no template", nil, 0},
		{"a template", &corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dryRuns := 0
			r, _, req := fakeReconciler(t, fixedSchedule.Add(-time.Minute), interceptor.Funcs{
				Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					o := &client.CreateOptions{}
					o.ApplyOptions(opts)
					if len(o.DryRun) > 0 {
						dryRuns++
					}
					return c.Create(ctx, obj, opts...)
				},
			})
			obj := &cnatv1alpha1.At{}
			if err := r.Client.Get(context.Background(), req.NamespacedName, obj); err != nil {
				t.Fatal(err)
			}
			obj.Spec.Template = tc.template
			if err := r.Client.Update(context.Background(), obj); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, got, pods, err := reconcileOnce(t, r, req); err != nil || got.Status.Phase != cnatv1alpha1.PhasePending || len(pods) != 0 {
					t.Fatalf("reconcile: %v, phase %s, %d pods; want PENDING and no pod", err, got.Status.Phase, len(pods))
				}
			}
			if dryRuns != tc.want {
				t.Errorf("%d dry-run creates over two reconciles, want %d", dryRuns, tc.want)
			}
		})
	}
}

// A manager that starts reconciles every At it lists, and users keep
// thousands of DONE ones: one whose pod is released (or gone) must cost no
// request, only reads of the cache. Here Client stands for the cache, so only
// its writes count; APIReader and the recorder reach the API server.
func TestDoneAtWithItsPodReleasedCostsNoRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  bool
		ttl  *int32
	}{
		{"its pod released", true, nil},
		{"its pod gone", false, nil},
		{"its pod released, its TTL not over", true, ptr.To[int32](3600)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var requests []string
			count := func(verb string) { requests = append(requests, verb) }
			r, _, req := fakeReconciler(t, fixedSchedule.Add(time.Minute), interceptor.Funcs{
				Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					count("create")
					return c.Create(ctx, obj, opts...)
				},
				Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
					count("update")
					return c.Update(ctx, obj, opts...)
				},
				Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
					count("patch")
					return c.Patch(ctx, obj, patch, opts...)
				},
				Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
					count("delete")
					return c.Delete(ctx, obj, opts...)
				},
				SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
					count("update " + sub)
					return c.SubResource(sub).Update(ctx, obj, opts...)
				},
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
					count("patch " + sub)
					return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
				},
			})
			ctx := context.Background()
			obj := &cnatv1alpha1.At{}
			if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
				t.Fatal(err)
			}
			obj.Spec.TTLSecondsAfterFinished = tc.ttl
			if err := r.Client.Update(ctx, obj); err != nil {
				t.Fatal(err)
			}
			if tc.pod {
				pod := at.PodFor(obj, "img", fixedSchedule)
				pod.Finalizers = nil
				pod.Status.Phase = corev1.PodSucceeded
				if err := r.Client.Create(ctx, pod); err != nil {
					t.Fatal(err)
				}
			}
			completed := metav1.NewMicroTime(fixedSchedule.Add(time.Second))
			obj.Status = cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhaseDone, Result: cnatv1alpha1.ResultSucceeded,
				Reason: cnatv1alpha1.ReasonSucceeded, ObservedGeneration: obj.Generation, PodName: at.PodName(obj),
				CompletionTime: &completed, ExitCode: ptr.To[int32](0)}
			if err := r.Client.Status().Update(ctx, obj); err != nil {
				t.Fatal(err)
			}
			requests = nil
			r.APIReader = interceptor.NewClient(fake.NewClientBuilder().WithScheme(scheme).Build(), interceptor.Funcs{
				Get: func(_ context.Context, _ client.WithWatch, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
					count("get " + key.Name)
					return apierrors.NewNotFound(schema.GroupResource{}, key.Name)
				},
				List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
					count("list")
					return nil
				},
			})
			recorder := events.NewFakeRecorder(10)
			r.Recorder = recorder

			result, err := r.Reconcile(ctx, req)
			if err != nil || len(requests) != 0 || len(recorder.Events) != 0 {
				t.Errorf("err=%v, requests %v, %d events; want no request and no event", err, requests, len(recorder.Events))
			}
			if wantWake := tc.ttl != nil; (result.RequeueAfter > 0) != wantWake {
				t.Errorf("result %+v; want a wake-up only for the TTL", result)
			}
		})
	}
}
