// Package controller runs the At state machine of package at against the API
// server: it reads an At and its pod, asks at.Decide what to do, and does it.
package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
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
	// from the cache of a RUNNING At really gone (or only relabelled).
	APIReader    client.Reader
	Clock        clock.PassiveClock
	Recorder     events.EventRecorder
	DefaultImage string
}

var _ reconcile.Reconciler = &AtReconciler{}

// maxDecisions bounds the decisions one reconcile makes: the longest chain is
// RUNNING, DONE, release the pod, delete the At (TTL 0).
const maxDecisions = 5

// podOwnerIndex indexes cached pods by the name of the At that controls them,
// to release the pods of an At that is gone.
const podOwnerIndex = ".metadata.controller.at"

// +kubebuilder:rbac:groups=cnat.programming-kubernetes.info,resources=ats,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=cnat.programming-kubernetes.info,resources=ats/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cnat.programming-kubernetes.info,resources=ats/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile reads the At and its pod, decides, and performs that one action.
func (r *AtReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var obj cnatv1alpha1.At
	if err := r.Client.Get(ctx, req.NamespacedName, &obj); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.releaseOrphans(ctx, req, "")
		}
		return ctrl.Result{}, fmt.Errorf("reading At: %w", err)
	}
	// An At deleted and created again under its name before its pod was
	// released leaves that pod to this one's requests.
	if err := r.releaseOrphans(ctx, req, obj.UID); err != nil {
		return ctrl.Result{}, err
	}
	pod, err := r.readPod(ctx, &obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	in := r.input(&obj, pod)
	if pod == nil && firstSeen(&obj) {
		if in.PodRejected, err = r.dryRun(ctx, &obj, in.Now); err != nil {
			return ctrl.Result{}, err
		}
	}
	return r.act(ctx, &obj, in)
}

// firstSeen says whether obj has a template and a spec no decision has
// recorded yet (status.observedGeneration lags), before any pod exists: the
// moment to check its pod with the API server, once per spec. An At without
// a template builds a pod the API server takes, so it costs no request.
func firstSeen(obj *cnatv1alpha1.At) bool {
	pending := obj.Status.Phase == "" || obj.Status.Phase == cnatv1alpha1.PhasePending
	return obj.Spec.Template != nil && obj.DeletionTimestamp == nil && pending &&
		obj.Status.ObservedGeneration != obj.Generation
}

// dryRun creates obj's pod as a server-side dry run, so that a template the
// API server would refuse as invalid ends the At when it is created, not at
// its schedule. It returns that refusal. Other refusals (a quota, Pod
// Security) may change by the schedule: the real create reports them.
func (r *AtReconciler) dryRun(ctx context.Context, obj *cnatv1alpha1.At, now time.Time) (rejected, err error) {
	pod := at.PodFor(obj, r.DefaultImage, now)
	err = r.Client.Create(ctx, pod, client.DryRunAll)
	switch {
	case err == nil, apierrors.IsAlreadyExists(err):
		return nil, nil
	case apierrors.IsInvalid(err):
		return fmt.Errorf("server-side dry run of the pod from spec.template: %w", err), nil
	case transient(err):
		return nil, fmt.Errorf("dry-run creating pod %s: %w", pod.Name, err)
	default:
		logf.FromContext(ctx).V(1).Info("the dry run of the pod was refused; the create at the schedule will tell",
			"pod", pod.Name, "error", err.Error())
		return nil, nil
	}
}

func (r *AtReconciler) input(obj *cnatv1alpha1.At, pod *corev1.Pod) at.Input {
	return at.Input{At: obj, Pod: pod, Now: r.Clock.Now(), DefaultImage: r.DefaultImage}
}

// readPod returns the pod named for obj, or nil if there is none.
func (r *AtReconciler) readPod(ctx context.Context, obj *cnatv1alpha1.At) (*corev1.Pod, error) {
	key := types.NamespacedName{Namespace: obj.Namespace, Name: at.PodName(obj)}
	pod := &corev1.Pod{}
	err := r.Client.Get(ctx, key, pod)
	if apierrors.IsNotFound(err) && obj.Status.Phase == cnatv1alpha1.PhaseRunning {
		// RunFinalizer keeps a RUNNING At's pod until DONE is stored, so a
		// cache miss is a pod the cache has not seen yet or one stripped of
		// the labels it selects: ask the API server.
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

// releaseOrphans removes RunFinalizer from the pods of an At named req that
// is gone (controlled by another UID than current, the At of that name now, if
// any), so that their deletion by the garbage collector is never held up.
// It reads the cache's index: no request unless there is one to release.
func (r *AtReconciler) releaseOrphans(ctx context.Context, req ctrl.Request, current types.UID) error {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(req.Namespace), client.MatchingFields{podOwnerIndex: req.Name}); err != nil {
		return fmt.Errorf("listing the pods of At %s: %w", req.Name, err)
	}
	for i := range pods.Items {
		if metav1.GetControllerOf(&pods.Items[i]).UID == current {
			continue
		}
		if err := r.releasePod(ctx, &pods.Items[i]); err != nil {
			return err
		}
	}
	return nil
}

// act asks Decide what to do and does it, deciding again (a bounded number of
// times) when the action says the next step needs no new event.
func (r *AtReconciler) act(ctx context.Context, obj *cnatv1alpha1.At, in at.Input) (ctrl.Result, error) {
	for range maxDecisions {
		next, result, err := r.do(ctx, obj, in, at.Decide(in))
		if err != nil || next == nil {
			return result, err
		}
		in = *next
	}
	return ctrl.Result{}, fmt.Errorf("no settled decision after %d rounds (phase %s, reason %s)",
		maxDecisions, obj.Status.Phase, obj.Status.Reason)
}

// do performs one action. It returns the input to decide again with, or the
// reconcile's result.
func (r *AtReconciler) do(ctx context.Context, obj *cnatv1alpha1.At, in at.Input, action at.Action) (*at.Input, ctrl.Result, error) {
	log := logf.FromContext(ctx)
	//exhaustive:enforce
	switch action.Type {
	case at.Wait:
		return nil, r.requeue(in.Now, action.RequeueAfter), nil
	case at.StartPod:
		next, err := r.createPod(ctx, obj, action)
		return next, ctrl.Result{}, err
	case at.DeletePod:
		log.Info("deleting pod past its deadline", "pod", action.Pod.Name)
		err := r.Client.Delete(ctx, action.Pod, client.Preconditions{UID: &action.Pod.UID})
		if client.IgnoreNotFound(err) != nil {
			return nil, ctrl.Result{}, fmt.Errorf("deleting pod %s past its deadline: %w", action.Pod.Name, err)
		}
		// Its deletionTimestamp, held by RunFinalizer, brings the next decision.
		return nil, ctrl.Result{}, nil
	case at.ReleasePod:
		if err := r.releasePod(ctx, action.Pod); err != nil {
			return nil, ctrl.Result{}, err
		}
		return r.again(action, in), ctrl.Result{}, nil
	case at.RelabelPod:
		log.Info("putting the operator's labels back on its pod", "pod", action.Pod.Name)
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": at.RunLabels(obj)}})
		if err != nil {
			return nil, ctrl.Result{}, fmt.Errorf("encoding the labels of pod %s: %w", action.Pod.Name, err)
		}
		if err := r.Client.Patch(ctx, action.Pod, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
			return nil, ctrl.Result{}, fmt.Errorf("relabelling pod %s: %w", action.Pod.Name, err)
		}
		// Back in the cache, the pod's appearance brings the next decision.
		return nil, ctrl.Result{}, nil
	case at.DeleteAt:
		log.V(1).Info("deleting At: ttlSecondsAfterFinished has passed")
		err := r.Client.Delete(ctx, obj, client.Preconditions{UID: &obj.UID},
			client.PropagationPolicy(metav1.DeletePropagationBackground))
		if client.IgnoreNotFound(err) != nil {
			return nil, ctrl.Result{}, fmt.Errorf("deleting At after its TTL: %w", err)
		}
		return nil, ctrl.Result{}, nil
	case at.WriteStatus:
		return r.writeStatus(ctx, obj, in, action)
	default:
		return nil, ctrl.Result{}, reconcile.TerminalError(fmt.Errorf("decide returned an unknown action %q", action.Type))
	}
}

// again is the input for the next decision after action, or nil if none is due.
func (r *AtReconciler) again(action at.Action, in at.Input) *at.Input {
	if !action.Again {
		return nil
	}
	// The cache has not seen our write yet; obj and the pod, as patched, have.
	next := r.input(in.At, in.Pod)
	return &next
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

// createPod creates the At's pod. When the API server refuses it, it returns
// the input to decide again with: the name is taken (by this At's own pod,
// after a restart or a create that timed out, or by a foreign one), the pod is
// invalid, or something else refuses it. Only errors that say nothing about
// the pod (throttling, timeouts, no answer) are retried by the workqueue.
func (r *AtReconciler) createPod(ctx context.Context, obj *cnatv1alpha1.At, action at.Action) (*at.Input, error) {
	pod := action.Pod
	sent := r.Clock.Now()
	err := r.Client.Create(ctx, pod)
	retry := r.input(obj, nil)
	switch {
	case err == nil:
		startWake.Observe(sent.Sub(action.Schedule).Seconds())
		startLag.Observe(r.Clock.Since(action.Schedule).Seconds())
		logf.FromContext(ctx).V(1).Info("pod created", "pod", pod.Name)
		// The pod's appearance in the cache brings RUNNING.
		return nil, nil
	case apierrors.IsAlreadyExists(err):
		existing := &corev1.Pod{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(pod), existing); err != nil {
			return nil, fmt.Errorf("reading pod %s that already exists: %w", pod.Name, err)
		}
		retry.Pod = existing
	case apierrors.IsInvalid(err):
		retry.PodRejected = err
	case transient(err):
		return nil, fmt.Errorf("creating pod %s: %w", pod.Name, err)
	default:
		logf.FromContext(ctx).Info("the API server refused the pod", "pod", pod.Name, "error", err.Error())
		retry.CreateRefused = err
	}
	return &retry, nil
}

// transient says whether a create error is about the request rather than
// the pod: retrying the same request soon may succeed.
func transient(err error) bool {
	var status apierrors.APIStatus
	return !errors.As(err, &status) || apierrors.IsTooManyRequests(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServerTimeout(err) || apierrors.IsServiceUnavailable(err)
}

// releasePod removes RunFinalizer from pod, and from the pod in memory. A
// strategic merge patch deletes just that entry, so it needs no optimistic lock.
func (r *AtReconciler) releasePod(ctx context.Context, pod *corev1.Pod) error {
	if !at.HasRunFinalizer(pod) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"$deleteFromPrimitiveList/finalizers": []string{cnatv1alpha1.RunFinalizer},
		"labels":                              map[string]string{at.ReleasedLabel: "true"}}})
	if err != nil {
		return fmt.Errorf("encoding the release of pod %s: %w", pod.Name, err)
	}
	if err := r.Client.Patch(ctx, pod, client.RawPatch(types.StrategicMergePatchType, patch)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("removing finalizer %s from pod %s: %w", cnatv1alpha1.RunFinalizer, pod.Name, err)
	}
	// The answer for a pod whose deletion this completes is the pod as it was
	// before: say what is now true, for the decision that follows.
	controllerutil.RemoveFinalizer(pod, cnatv1alpha1.RunFinalizer)
	metav1.SetMetaDataLabel(&pod.ObjectMeta, at.ReleasedLabel, "true")
	logf.FromContext(ctx).V(1).Info("pod released", "pod", pod.Name)
	return nil
}

// writeStatus patches the status with an optimistic lock: a write based on a
// stale read fails with a conflict and is retried on fresh data, never applied.
func (r *AtReconciler) writeStatus(ctx context.Context, obj *cnatv1alpha1.At, in at.Input, action at.Action) (*at.Input, ctrl.Result, error) {
	base := obj.DeepCopy()
	obj.Status = *action.Status
	patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	if err := r.Client.Status().Patch(ctx, obj, patch); err != nil {
		return nil, ctrl.Result{}, fmt.Errorf("writing status %s/%s: %w", action.Status.Phase, action.Status.Reason, err)
	}
	logf.FromContext(ctx).V(1).Info("status written", "phase", obj.Status.Phase, "result", obj.Status.Result,
		"reason", obj.Status.Reason, "pod", obj.Status.PodName)
	if action.Event != nil {
		r.Recorder.Eventf(obj, nil, action.Event.Type, action.Event.Reason, string(action.Type), "%s", action.Event.Note)
	}
	if base.Status.Phase != cnatv1alpha1.PhaseDone && obj.Status.Phase == cnatv1alpha1.PhaseDone {
		runsTotal.WithLabelValues(string(obj.Status.Result)).Inc()
	}
	if action.Terminal != nil {
		return nil, ctrl.Result{}, reconcile.TerminalError(action.Terminal)
	}
	if next := r.again(action, in); next != nil {
		return next, ctrl.Result{}, nil
	}
	return nil, r.requeue(in.Now, action.RequeueAfter), nil
}

// SetupWithManager watches Ats and the pods they own. Only events that can
// change a decision pass: a new spec (not our own status writes), a pod that
// appeared, ended, started being deleted, is gone, or whose hold changed.
func (r *AtReconciler) SetupWithManager(mgr ctrl.Manager, options controller.Options) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &corev1.Pod{}, podOwnerIndex, ownerAtName)
	if err != nil {
		return fmt.Errorf("indexing pods by their At: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Watches(&cnatv1alpha1.At{}, atHandler(r.Clock.Now), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Pod{}, podHandler(mgr.GetScheme(), mgr.GetRESTMapper()), builder.WithPredicates(podChanged)).
		WithOptions(options).
		Named("at").
		Complete(r)
}

// atHandler queues an At as controller-runtime's own handler does, which
// puts a starting manager's initial list at low priority, behind the events
// that follow it; except an At of that list whose schedule has come (it came
// due while no manager ran, or during the start): after a restart among
// 20,000 finished Ats, the one due now goes first.
func atHandler(now func() time.Time) handler.EventHandler {
	h := &handler.EnqueueRequestForObject{}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			pq, isPriorityQueue := q.(priorityqueue.PriorityQueue[reconcile.Request])
			obj, isAt := e.Object.(*cnatv1alpha1.At)
			if isPriorityQueue && isAt && e.IsInInitialList && due(obj, now()) {
				pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(0)}, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
				return
			}
			h.Create(ctx, e, q)
		},
		UpdateFunc:  h.Update,
		DeleteFunc:  h.Delete,
		GenericFunc: h.Generic,
	}
}

// due says whether obj waits to start and its schedule has come.
func due(obj *cnatv1alpha1.At, now time.Time) bool {
	waiting := obj.Status.Phase == "" || obj.Status.Phase == cnatv1alpha1.PhasePending
	if !waiting || obj.DeletionTimestamp != nil || ptr.Deref(obj.Spec.Suspend, false) {
		return false
	}
	schedule, err := at.Schedule(&obj.Spec)
	return err == nil && !schedule.After(now)
}

// ownerAtName is podOwnerIndex's value: the name of the At controlling pod.
func ownerAtName(obj client.Object) []string {
	owner := metav1.GetControllerOf(obj)
	if owner == nil || owner.Kind != "At" || owner.APIVersion != cnatv1alpha1.GroupVersion.String() {
		return nil
	}
	return []string{owner.Name}
}

var podChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, oldOK := e.ObjectOld.(*corev1.Pod)
		pod, newOK := e.ObjectNew.(*corev1.Pod)
		return !oldOK || !newOK || at.PodEnded(pod) != at.PodEnded(old) || holdChanged(old, pod)
	},
}

func holdChanged(old, pod *corev1.Pod) bool {
	oldReason, _ := at.Hold(old)
	reason, _ := at.Hold(pod)
	return oldReason != reason
}

// podHandler queues the At controlling a pod. A pod that appeared, or whose
// hold changed, waits at low priority behind the Ats whose schedule has come:
// recording RUNNING or a hold can wait, creating a due pod cannot. A pod's
// end keeps the default priority.
func podHandler(scheme *runtime.Scheme, mapper meta.RESTMapper) handler.EventHandler {
	h := handler.EnqueueRequestForOwner(scheme, mapper, &cnatv1alpha1.At{}, handler.OnlyControllerOwner())
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.Create(ctx, e, lowPriority(q))
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if pod, ok := e.ObjectNew.(*corev1.Pod); ok && !at.PodEnded(pod) {
				q = lowPriority(q)
			}
			h.Update(ctx, e, q)
		},
		DeleteFunc:  h.Delete,
		GenericFunc: h.Generic,
	}
}

func lowPriority(q workqueue.TypedRateLimitingInterface[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		return lowPriorityQueue{pq}
	}
	return q
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
