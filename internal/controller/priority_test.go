package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

func TestPodEventsQueueTheirAtAtLowPriorityUnlessThePodEnded(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(cnatv1alpha1.GroupVersion.WithKind("At"), meta.RESTScopeNamespace)
	h := podHandler(scheme, mapper)
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	owner := &cnatv1alpha1.At{ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "ns", UID: "u1"}}
	want := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(owner)}
	pod := at.PodFor(owner, "img", time.Now())
	pod.ResourceVersion = "1"
	held := pod.DeepCopy()
	held.ResourceVersion = "2"
	held.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: at.ContainerName,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}
	ended := pod.DeepCopy()
	ended.ResourceVersion, ended.Status.Phase = "2", corev1.PodSucceeded

	h.Create(context.Background(), event.CreateEvent{Object: pod}, q)
	if req, priority := next(t, q); req != want || priority != handler.LowPriority {
		t.Errorf("pod appeared: queued %v at priority %d, want %v at %d", req, priority, want, handler.LowPriority)
	}
	h.Update(context.Background(), event.UpdateEvent{ObjectOld: pod, ObjectNew: held}, q)
	if req, priority := next(t, q); req != want || priority != handler.LowPriority {
		t.Errorf("pod held: queued %v at priority %d, want %v at %d", req, priority, want, handler.LowPriority)
	}
	h.Update(context.Background(), event.UpdateEvent{ObjectOld: pod, ObjectNew: ended}, q)
	if req, priority := next(t, q); req != want || priority != 0 {
		t.Errorf("pod ended: queued %v at priority %d, want %v at 0", req, priority, want)
	}
	h.Delete(context.Background(), event.DeleteEvent{Object: ended}, q)
	if req, priority := next(t, q); req != want || priority != 0 {
		t.Errorf("pod gone: queued %v at priority %d, want %v at 0", req, priority, want)
	}
}

func next(t *testing.T, q priorityqueue.PriorityQueue[reconcile.Request]) (reconcile.Request, int) {
	t.Helper()
	type got struct {
		req      reconcile.Request
		priority int
	}
	ch := make(chan got, 1)
	go func() {
		req, priority, _ := q.GetWithPriority()
		ch <- got{req, priority}
	}()
	select {
	case g := <-ch:
		q.Done(g.req)
		return g.req, g.priority
	case <-time.After(10 * time.Second):
		t.Fatal("nothing was queued within 10s")
		return reconcile.Request{}, 0
	}
}

// A starting manager's initial list waits at low priority, except an At
// whose schedule has come: it must not queue behind thousands of finished Ats.
func TestInitialListQueuesDueAtsFirst(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	h := atHandler(func() time.Time { return now })
	at := func(name, schedule string, phase cnatv1alpha1.Phase, suspend bool) *cnatv1alpha1.At {
		return &cnatv1alpha1.At{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
			Spec:       cnatv1alpha1.AtSpec{Schedule: schedule, Command: "true", Suspend: ptr.To(suspend)},
			Status:     cnatv1alpha1.AtStatus{Phase: phase},
		}
	}
	for _, tc := range []struct {
		name         string
		obj          *cnatv1alpha1.At
		initialList  bool
		wantPriority int
	}{
		{"due, new", at("due-new", "2026-11-29T11:59:59Z", "", false), true, 0},
		{"due, PENDING", at("due-pending", "2026-11-29T12:00:00Z", cnatv1alpha1.PhasePending, false), true, 0},
		{"not due yet", at("later", "2026-11-29T12:00:01Z", cnatv1alpha1.PhasePending, false), true, handler.LowPriority},
		{"DONE", at("done", "2026-11-29T11:00:00Z", cnatv1alpha1.PhaseDone, false), true, handler.LowPriority},
		{"RUNNING", at("running", "2026-11-29T11:00:00Z", cnatv1alpha1.PhaseRunning, false), true, handler.LowPriority},
		{"due but suspended", at("suspended", "2026-11-29T11:00:00Z", cnatv1alpha1.PhasePending, true), true, handler.LowPriority},
		{"schedule unreadable", at("bad", "tomorrow", cnatv1alpha1.PhasePending, false), true, handler.LowPriority},
		{"created after the start", at("fresh", "2026-11-29T13:00:00Z", "", false), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := priorityqueue.New[reconcile.Request]("test")
			defer q.ShutDown()
			h.Create(context.Background(), event.CreateEvent{Object: tc.obj, IsInInitialList: tc.initialList}, q)
			want := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(tc.obj)}
			if req, priority := next(t, q); req != want || priority != tc.wantPriority {
				t.Errorf("queued %v at priority %d, want %v at %d", req, priority, want, tc.wantPriority)
			}
		})
	}
}
