package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

// These tests cover the run-tracking finalizer, the deadlines the operator
// enforces and what holds a run, on a real API server (envtest: no scheduler,
// no kubelet, no garbage collector; the tests play those parts).

func getPod(ctx context.Context, key client.ObjectKey) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	return pod, k8sClient.Get(ctx, key, pod)
}

func waitForPodGone(t *testing.T, key client.ObjectKey) {
	t.Helper()
	eventually(t, timeout, "pod "+key.Name+" gone", func(ctx context.Context) (bool, error) {
		_, err := getPod(ctx, key)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}

func TestRunPodIsHeldByTheFinalizerUntilDoneIsStored(t *testing.T) {
	ns := newNamespace(t, k8sClient)
	obj := createAt(t, k8sClient, ns, time.Now())
	pod := runPod(t, k8sClient, obj)
	if !at.HasRunFinalizer(pod) {
		t.Fatalf("pod finalizers = %v, want %s", pod.Finalizers, cnatv1alpha1.RunFinalizer)
	}
	finishPod(t, k8sClient, pod, corev1.PodSucceeded, 0)
	waitFor(t, k8sClient, obj, "DONE", inPhase(cnatv1alpha1.PhaseDone))
	eventually(t, timeout, "the pod released and labelled so", func(ctx context.Context) (bool, error) {
		got, err := getPod(ctx, client.ObjectKeyFromObject(pod))
		return err == nil && !at.HasRunFinalizer(got) && got.Labels[at.ReleasedLabel] == "true", err
	})
}

// The window the finalizer closes: a manager created the pod and lost its
// RUNNING write; the pod is deleted; a new manager, with nothing in memory,
// must end the At instead of running the command again.
func TestPodDeletedBeforeRunningAcrossARestartNeverRunsTwice(t *testing.T) {
	ctx := context.Background()
	obj := &cnatv1alpha1.At{
		ObjectMeta: metav1.ObjectMeta{Name: "window", Namespace: unmanagedNamespace},
		Spec:       cnatv1alpha1.AtSpec{Schedule: time.Now().Format(time.RFC3339Nano), Command: "echo once"},
	}
	if err := k8sClient.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	creates := 0
	countCreates := interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
		err := c.Create(ctx, o, opts...)
		if _, ok := o.(*corev1.Pod); ok && err == nil {
			creates++
		}
		return err
	}}
	loseStatusWrites := countCreates
	loseStatusWrites.SubResourcePatch = func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
		return apierrors.NewServiceUnavailable("the manager lost its lease")
	}
	reconciler := func(funcs interceptor.Funcs) *AtReconciler {
		c := interceptor.NewClient(newManagerClient(t), funcs)
		return &AtReconciler{Client: c, APIReader: k8sClient, Clock: clock.RealClock{}, Recorder: &events.FakeRecorder{}, DefaultImage: "test-image:1"}
	}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(obj)}
	first := reconciler(loseStatusWrites)
	if _, err := first.Reconcile(ctx, req); err != nil {
		t.Fatalf("creating the pod: %v", err)
	}
	if _, err := first.Reconcile(ctx, req); err == nil {
		t.Fatal("the RUNNING write was meant to fail")
	}
	podKey := client.ObjectKey{Namespace: obj.Namespace, Name: at.PodName(obj)}
	pod, err := getPod(ctx, podKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	if held, err := getPod(ctx, podKey); err != nil || held.DeletionTimestamp == nil {
		t.Fatalf("the deleted pod is not held by the finalizer: %v", err)
	}

	second := reconciler(countCreates)
	for range 3 {
		if _, err := second.Reconcile(ctx, req); err != nil {
			t.Fatalf("the restarted manager: %v", err)
		}
	}
	got := &cnatv1alpha1.At{}
	if err := k8sClient.Get(ctx, req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != cnatv1alpha1.PhaseDone || got.Status.Reason != cnatv1alpha1.ReasonPodDeleted || creates != 1 {
		t.Errorf("status %s/%s after %d pods created; want DONE PodDeleted after exactly 1", got.Status.Phase, got.Status.Reason, creates)
	}
	waitForPodGone(t, podKey)
}

// newManagerClient is the client a newly started manager would have: reads
// from a cache of its own, filled from the API server, with the pod index,
// over the unmanaged namespace.
func newManagerClient(t *testing.T) client.WithWatch {
	t.Helper()
	opts := CacheOptions([]string{unmanagedNamespace})
	opts.Scheme = scheme
	informers, err := cache.New(restConfig, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := informers.IndexField(context.Background(), &corev1.Pod{}, podOwnerIndex, ownerAtName); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		t.Fatal("the new manager's cache did not sync")
	}
	c, err := client.NewWithWatch(restConfig, client.Options{Scheme: scheme, Cache: &client.CacheOptions{Reader: informers}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// playScheduler marks pod unschedulable, as kube-scheduler would.
func playScheduler(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}}
	if err := k8sClient.Status().Update(context.Background(), pod); err != nil {
		t.Fatalf("writing pod status: %v", err)
	}
}

func TestUnschedulablePodIsHeldThenMissedAtTheStartingDeadline(t *testing.T) {
	ns := newNamespace(t, k8sClient)
	obj := createAt(t, k8sClient, ns, time.Now(), func(a *cnatv1alpha1.At) { a.Spec.StartingDeadlineSeconds = ptr.To[int64](3) })
	pod := runPod(t, k8sClient, obj)
	playScheduler(t, pod)
	held := waitFor(t, k8sClient, obj, "Held Unschedulable", func(a *cnatv1alpha1.At) bool {
		c := meta.FindStatusCondition(a.Status.Conditions, cnatv1alpha1.ConditionHeld)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == corev1.PodReasonUnschedulable
	})
	if held.Status.Phase != cnatv1alpha1.PhaseRunning || !strings.Contains(held.Status.Message, "0/1 nodes") {
		t.Errorf("status %+v, want RUNNING with the scheduler's message", held.Status)
	}
	waitForEvent(t, k8sClient, obj, corev1.PodReasonUnschedulable)

	done := waitFor(t, k8sClient, obj, "DONE", inPhase(cnatv1alpha1.PhaseDone))
	if done.Status.Result != cnatv1alpha1.ResultMissed || done.Status.Reason != cnatv1alpha1.ReasonMissedStartingDeadline ||
		!strings.Contains(done.Status.Message, "Unschedulable: 0/1 nodes") {
		t.Errorf("status %+v, want Missed, MissedStartingDeadline, naming Unschedulable", done.Status)
	}
	waitForPodGone(t, client.ObjectKeyFromObject(pod))
}

func TestActiveDeadlineCountsFromThePodsCreation(t *testing.T) {
	ns := newNamespace(t, k8sClient)
	obj := createAt(t, k8sClient, ns, time.Now(), func(a *cnatv1alpha1.At) { a.Spec.ActiveDeadlineSeconds = ptr.To[int64](2) })
	pod := runPod(t, k8sClient, obj) // never bound: the kubelet's own deadline would never count
	done := waitFor(t, k8sClient, obj, "DONE", inPhase(cnatv1alpha1.PhaseDone))
	if done.Status.Result != cnatv1alpha1.ResultFailed || done.Status.Reason != cnatv1alpha1.ReasonDeadlineExceeded {
		t.Errorf("status %+v, want Failed DeadlineExceeded", done.Status)
	}
	if took := done.Status.CompletionTime.Sub(done.Status.StartTime.Time); took < 2*time.Second {
		t.Errorf("ended %s after the pod's creation, before activeDeadlineSeconds=2", took)
	}
	waitForPodGone(t, client.ObjectKeyFromObject(pod))
}

// A namespace quota that allows no pods: the API server's refusal is said on
// the At (condition and Warning), then ends it Missed at its deadline.
func TestRefusedCreateIsHeldThenMissed(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, k8sClient)
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-pods", Namespace: ns},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}},
	}
	if err := k8sClient.Create(ctx, quota); err != nil {
		t.Fatal(err)
	}
	// envtest runs no quota controller: write the usage it would.
	quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}}
	if err := k8sClient.Status().Update(ctx, quota); err != nil {
		t.Fatal(err)
	}
	obj := createAt(t, k8sClient, ns, time.Now(), func(a *cnatv1alpha1.At) { a.Spec.StartingDeadlineSeconds = ptr.To[int64](3) })
	held := waitFor(t, k8sClient, obj, "Held FailedCreate", func(a *cnatv1alpha1.At) bool {
		return meta.IsStatusConditionTrue(a.Status.Conditions, cnatv1alpha1.ConditionHeld)
	})
	if held.Status.Phase != cnatv1alpha1.PhasePending || held.Status.Reason != cnatv1alpha1.ReasonFailedCreate ||
		!strings.Contains(held.Status.Message, "exceeded quota") {
		t.Errorf("status %+v, want PENDING, FailedCreate with the quota's message", held.Status)
	}
	waitForEvent(t, k8sClient, obj, cnatv1alpha1.ReasonFailedCreate)
	done := waitFor(t, k8sClient, obj, "DONE", inPhase(cnatv1alpha1.PhaseDone))
	if done.Status.Result != cnatv1alpha1.ResultMissed || !strings.Contains(done.Status.Message, "FailedCreate") {
		t.Errorf("status %+v, want Missed naming FailedCreate", done.Status)
	}
}

func TestPodStrippedOfItsLabelsIsFollowedToItsEnd(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, k8sClient)
	obj := createAt(t, k8sClient, ns, time.Now())
	pod := runPod(t, k8sClient, obj)
	patch := client.MergeFrom(pod.DeepCopy())
	pod.Labels = nil
	if err := k8sClient.Patch(ctx, pod, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, "the labels put back", func(ctx context.Context) (bool, error) {
		got, err := getPod(ctx, client.ObjectKeyFromObject(pod))
		return err == nil && got.Labels[at.ManagedByLabel] == at.ManagedByValue, err
	})
	got, err := getPod(ctx, client.ObjectKeyFromObject(pod))
	if err != nil {
		t.Fatal(err)
	}
	finishPod(t, k8sClient, got, corev1.PodSucceeded, 0)
	if done := waitFor(t, k8sClient, obj, "DONE", inPhase(cnatv1alpha1.PhaseDone)); done.Status.Result != cnatv1alpha1.ResultSucceeded {
		t.Errorf("status %+v, want Succeeded", done.Status)
	}
}

// Deleting an At must not leave its pod stuck on the finalizer (envtest has
// no garbage collector: the test deletes the orphan itself).
func TestDeletedAtReleasesItsPod(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, k8sClient)
	obj := createAt(t, k8sClient, ns, time.Now(), func(a *cnatv1alpha1.At) { a.Spec.Command = "sleep 3600" })
	pod := runPod(t, k8sClient, obj)
	if err := k8sClient.Delete(ctx, obj); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, "the pod released", func(ctx context.Context) (bool, error) {
		got, err := getPod(ctx, client.ObjectKeyFromObject(pod))
		return err == nil && !at.HasRunFinalizer(got), err
	})
	if err := k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	waitForPodGone(t, client.ObjectKeyFromObject(pod))
}
