// Package controller runs the At state machine of package at against the API
// server: it reads an At and its pod, asks at.Decide what to do, and does it.
package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

// AtReconciler runs each At's command once, in a pod, at its schedule.
type AtReconciler struct {
	// Client reads from the manager's cache, which holds only the operator's pods.
	Client client.Client
	// APIReader reads from the API server, for the few questions the cache
	// cannot answer: whose is a pod we could not create, and is a pod missing
	// from the cache really gone.
	APIReader    client.Reader
	Clock        clock.PassiveClock
	Recorder     events.EventRecorder
	DefaultImage string

	// created holds the Ats (key → UID) whose pod this manager created and
	// whose RUNNING is not written yet: until it is, a pod missing from the
	// cache must be looked up, and if it is gone it was deleted, not never
	// created.
	created sync.Map
}

var _ reconcile.Reconciler = &AtReconciler{}

// +kubebuilder:rbac:groups=cnat.programming-kubernetes.info,resources=ats,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=cnat.programming-kubernetes.info,resources=ats/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cnat.programming-kubernetes.info,resources=ats/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile reads the At and its pod, decides, and performs that one action.
func (r *AtReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var obj cnatv1alpha1.At
	if err := r.Client.Get(ctx, req.NamespacedName, &obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.created.Delete(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	pod, err := r.readPod(ctx, &obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	return r.act(ctx, &obj, r.input(&obj, pod))
}

func (r *AtReconciler) input(obj *cnatv1alpha1.At, pod *corev1.Pod) at.Input {
	return at.Input{At: obj, Pod: pod, Now: r.Clock.Now(), DefaultImage: r.DefaultImage, PodCreated: r.podCreated(obj)}
}

func (r *AtReconciler) podCreated(obj *cnatv1alpha1.At) bool {
	uid, ok := r.created.Load(client.ObjectKeyFromObject(obj))
	return ok && uid == obj.UID
}

// readPod returns the pod named for obj, or nil if there is none.
func (r *AtReconciler) readPod(ctx context.Context, obj *cnatv1alpha1.At) (*corev1.Pod, error) {
	key := types.NamespacedName{Namespace: obj.Namespace, Name: at.PodName(obj)}
	pod := &corev1.Pod{}
	err := r.Client.Get(ctx, key, pod)
	if apierrors.IsNotFound(err) && (obj.Status.Phase == cnatv1alpha1.PhaseRunning || r.podCreated(obj)) {
		// The cache may not have seen the pod this controller just created:
		// ask the API server before concluding that it was deleted.
		err = r.APIReader.Get(ctx, key, pod)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading pod %s: %w", key.Name, err)
	}
	return pod, nil
}

// act asks Decide what to do with in and does it.
func (r *AtReconciler) act(ctx context.Context, obj *cnatv1alpha1.At, in at.Input) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	action := at.Decide(in)
	switch action.Kind {
	case at.Wait:
		return r.requeue(in.Now, action.RequeueAfter), nil
	case at.DeleteAt:
		log.Info("deleting At: ttlSecondsAfterFinished has passed")
		err := r.Client.Delete(ctx, obj, client.Preconditions{UID: &obj.UID},
			client.PropagationPolicy(metav1.DeletePropagationBackground))
		if client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("deleting At after its TTL: %w", err)
		}
		return ctrl.Result{}, nil
	case at.StartPod:
		retry, err := r.createPod(ctx, obj, action)
		if err != nil {
			return ctrl.Result{}, err
		}
		if retry != nil {
			return r.act(ctx, obj, *retry)
		}
		log.Info("pod created", "pod", action.Pod.Name)
		return ctrl.Result{}, nil
	}
	if err := r.writeStatus(ctx, obj, action.Status); err != nil {
		return ctrl.Result{}, err
	}
	if obj.Status.Phase != cnatv1alpha1.PhasePending {
		r.created.Delete(client.ObjectKeyFromObject(obj))
	}
	log.Info("status written", "phase", obj.Status.Phase, "result", obj.Status.Result,
		"reason", obj.Status.Reason, "pod", obj.Status.PodName)
	if action.Event != nil {
		r.Recorder.Eventf(obj, nil, action.Event.Type, action.Event.Reason, string(action.Kind), "%s", action.Event.Note)
	}
	if obj.Status.Phase == cnatv1alpha1.PhaseDone {
		runsTotal.WithLabelValues(string(obj.Status.Result)).Inc()
	}
	if action.Terminal != nil {
		return ctrl.Result{}, reconcile.TerminalError(action.Terminal)
	}
	if action.Again {
		// The cache has not seen the write yet; the patched obj has.
		return r.act(ctx, obj, r.input(obj, in.Pod))
	}
	return r.requeue(in.Now, action.RequeueAfter), nil
}

// requeue turns Decide's wait, counted from decidedAt, into a requeue counted
// from now: the writes in between must not make the wake-up late. A timed
// wake-up is a deadline, so it goes ahead of the low-priority pod events
// whatever the priority of the event that led here.
func (r *AtReconciler) requeue(decidedAt time.Time, after time.Duration) ctrl.Result {
	if after <= 0 {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: max(after-r.Clock.Since(decidedAt), time.Nanosecond), Priority: ptr.To(0)}
}

// createPod creates the At's pod. When the API server refuses it for a reason
// the state machine must weigh (the name is taken, the pod is invalid), it
// returns the input to decide again with.
func (r *AtReconciler) createPod(ctx context.Context, obj *cnatv1alpha1.At, action at.Action) (*at.Input, error) {
	pod := action.Pod
	err := r.Client.Create(ctx, pod)
	switch {
	case err == nil:
		startLag.Observe(r.Clock.Since(action.Schedule).Seconds())
		r.created.Store(client.ObjectKeyFromObject(obj), obj.UID)
		return nil, nil
	case apierrors.IsAlreadyExists(err):
		existing := &corev1.Pod{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(pod), existing); err != nil {
			return nil, fmt.Errorf("reading pod %s that already exists: %w", pod.Name, err)
		}
		retry := r.input(obj, existing)
		return &retry, nil
	case apierrors.IsInvalid(err):
		retry := r.input(obj, nil)
		retry.PodRejected = err
		return &retry, nil
	default:
		return nil, fmt.Errorf("creating pod %s: %w", pod.Name, err)
	}
}

// writeStatus patches the status with an optimistic lock: a write based on a
// stale read fails with a conflict and is retried on fresh data, never applied.
func (r *AtReconciler) writeStatus(ctx context.Context, obj *cnatv1alpha1.At, status *cnatv1alpha1.AtStatus) error {
	base := obj.DeepCopy()
	obj.Status = *status
	patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	if err := r.Client.Status().Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("writing status %s: %w", status.Phase, err)
	}
	return nil
}

// SetupWithManager watches Ats and the pods they own. Only events that can
// change a decision pass: a new spec (not our own status writes), a pod that
// appeared, ended, started being deleted or is gone.
func (r *AtReconciler) SetupWithManager(mgr ctrl.Manager, options controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&cnatv1alpha1.At{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Pod{}, podHandler(mgr.GetScheme(), mgr.GetRESTMapper()), builder.WithPredicates(podAppearedOrEnded)).
		WithOptions(options).
		Named("at").
		Complete(r)
}

var podAppearedOrEnded = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, oldOK := e.ObjectOld.(*corev1.Pod)
		pod, newOK := e.ObjectNew.(*corev1.Pod)
		return !oldOK || !newOK || at.PodEnded(pod) != at.PodEnded(old)
	},
}

// podHandler queues the At controlling a pod. A pod that appeared waits at low
// priority behind the Ats whose schedule has come: recording RUNNING can
// wait, creating a due pod cannot. A pod's end keeps the default priority.
func podHandler(scheme *runtime.Scheme, mapper meta.RESTMapper) handler.EventHandler {
	h := handler.EnqueueRequestForOwner(scheme, mapper, &cnatv1alpha1.At{}, handler.OnlyControllerOwner())
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
				q = lowPriorityQueue{pq}
			}
			h.Create(ctx, e, q)
		},
		UpdateFunc:  h.Update,
		DeleteFunc:  h.Delete,
		GenericFunc: h.Generic,
	}
}

// lowPriorityQueue adds every item at handler.LowPriority.
type lowPriorityQueue struct {
	priorityqueue.PriorityQueue[reconcile.Request]
}

func (q lowPriorityQueue) Add(item reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{}, item)
}

func (q lowPriorityQueue) AddAfter(item reconcile.Request, after time.Duration) {
	q.AddWithOpts(priorityqueue.AddOpts{After: after}, item)
}

func (q lowPriorityQueue) AddRateLimited(item reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{RateLimited: true}, item)
}

func (q lowPriorityQueue) AddWithOpts(opts priorityqueue.AddOpts, items ...reconcile.Request) {
	opts.Priority = ptr.To(handler.LowPriority)
	q.PriorityQueue.AddWithOpts(opts, items...)
}
