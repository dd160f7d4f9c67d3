package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/programming-kubernetes/cnat/e2e/internal/scrape"
)

// managerContainer is the manager's container in its pod (config/manager).
const managerContainer = "manager"

// managerPods are the pods --manager-selector matches in the manager's namespace.
func (b *bench) managerPods(ctx context.Context) ([]corev1.Pod, error) {
	selector, err := labels.Parse(b.o.managerSelector)
	if err != nil {
		return nil, fmt.Errorf("--manager-selector: %w", err)
	}
	list := &corev1.PodList{}
	if err := b.c.List(ctx, list, client.InNamespace(scrape.ManagerNamespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("listing the manager's pods: %w", err)
	}
	return list.Items, nil
}

// managerPod is the manager's current pod: not being deleted, its manager
// container started. During a rollout the old pod, still shutting down, is
// not it; of two such pods (there should not be) the newest.
func (b *bench) managerPod(ctx context.Context) (*corev1.Pod, error) {
	pods, err := b.managerPods(ctx)
	if err != nil {
		return nil, err
	}
	var found *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || managerStatus(p) == nil || managerStatus(p).ContainerID == "" {
			continue
		}
		if found == nil || p.CreationTimestamp.After(found.CreationTimestamp.Time) {
			found = p
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no started manager pod %s in %s", b.o.managerSelector, scrape.ManagerNamespace)
	}
	return found, nil
}

// managerStatus is the manager container's status in pod; nil before the kubelet reports one.
func managerStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	i := slices.IndexFunc(pod.Status.ContainerStatuses, func(s corev1.ContainerStatus) bool { return s.Name == managerContainer })
	if i < 0 {
		return nil
	}
	return &pod.Status.ContainerStatuses[i]
}

// managerState is what says whether the manager restarted: its pod and its
// container's restart count and last termination reason.
type managerState struct {
	pod        types.UID
	name       string
	restarts   int32
	lastReason string // the last termination's reason: OOMKilled, Error, …
}

func (b *bench) managerState(ctx context.Context) (managerState, error) {
	pod, err := b.managerPod(ctx)
	if err != nil {
		return managerState{}, err
	}
	s := managerStatus(pod)
	state := managerState{pod: pod.UID, name: pod.Name, restarts: s.RestartCount}
	if t := s.LastTerminationState.Terminated; t != nil {
		state.lastReason = t.Reason
	}
	return state, nil
}

// restartsSince is how often the manager restarted since before, and an
// error when it did at all: a restarted container (OOMKilled or not) or a
// replaced pod (evicted, deleted).
func (b *bench) restartsSince(ctx context.Context, before managerState) (int, error) {
	after, err := b.managerState(ctx)
	if err != nil {
		return 0, err
	}
	switch {
	case after.pod != before.pod:
		return 0, fmt.Errorf("the manager's pod %s was replaced by %s", before.name, after.name)
	case after.restarts != before.restarts:
		return int(after.restarts - before.restarts), fmt.Errorf("the manager restarted %d times (last termination: %s)",
			after.restarts-before.restarts, after.lastReason)
	}
	return 0, nil
}

// managerDeployment is the Deployment that owns the manager's pod (through
// its ReplicaSet).
func (b *bench) managerDeployment(ctx context.Context) (*appsv1.Deployment, error) {
	pod, err := b.managerPod(ctx)
	if err != nil {
		return nil, err
	}
	rsRef := ownerOfKind(pod.OwnerReferences, "ReplicaSet")
	if rsRef == nil {
		return nil, fmt.Errorf("the manager's pod %s has no ReplicaSet owner", pod.Name)
	}
	rs := &appsv1.ReplicaSet{}
	if err := b.c.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: rsRef.Name}, rs); err != nil {
		return nil, fmt.Errorf("the manager's ReplicaSet: %w", err)
	}
	depRef := ownerOfKind(rs.OwnerReferences, "Deployment")
	if depRef == nil {
		return nil, fmt.Errorf("the manager's ReplicaSet %s has no Deployment owner", rs.Name)
	}
	dep := &appsv1.Deployment{}
	if err := b.c.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: depRef.Name}, dep); err != nil {
		return nil, fmt.Errorf("the manager's Deployment: %w", err)
	}
	return dep, nil
}

func ownerOfKind(refs []metav1.OwnerReference, kind string) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Kind == kind {
			return &refs[i]
		}
	}
	return nil
}

// scaleManager sets the manager Deployment's replicas through its scale subresource.
func (b *bench) scaleManager(ctx context.Context, dep *appsv1.Deployment, replicas int32) error {
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas))
	scale := &autoscalingv1.Scale{}
	if err := b.c.SubResource("scale").Patch(ctx, dep, patch, client.WithSubResourceBody(scale)); err != nil {
		return fmt.Errorf("scaling deployment %s to %d: %w", dep.Name, replicas, err)
	}
	return nil
}

// waitManagerGone waits until no manager pod is left, not even one shutting down.
func (b *bench) waitManagerGone(ctx context.Context, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := b.managerPods(ctx)
		return err == nil && len(pods) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("the manager's pod still there after %s: %w", timeout, err)
	}
	return nil
}

// waitPodGone waits until the pod ns/name no longer exists.
func (b *bench) waitPodGone(ctx context.Context, ns, name string, timeout time.Duration) error {
	pod := &corev1.Pod{}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(b.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod)), nil
	})
	if err != nil {
		return fmt.Errorf("pod %s/%s still there after %s: %w", ns, name, timeout, err)
	}
	return nil
}

// waitSynced waits until the manager has reconciled at least atLeast Ats
// since it started (controller_runtime_reconcile_total of the At
// controller, which starts from zero in a new pod) and then reconciled
// nothing more for quiet: every At in its cache has had its first
// reconcile, and the pods' events have settled. A count alone would stop at
// the first of them; quiet alone, before the manager started. Scrapes fail
// until the pod is Ready; they are retried. Should a future manager skip
// some Ats' first reconcile (a filter on DONE Ats), a count that stands
// still below atLeast for 5 times quiet counts as settled too, said aloud.
func (b *bench) waitSynced(ctx context.Context, atLeast float64, quiet, timeout time.Duration) error {
	last, since := -1.0, time.Now()
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		n, err := b.reconciles(ctx)
		if err != nil {
			lastErr = err
			return false, nil
		}
		if n != last {
			last, since = n, time.Now()
			return false, nil
		}
		if n > 0 && n < atLeast && time.Since(since) >= 5*quiet {
			fmt.Printf("the manager stood still at %.0f reconciles, fewer than the %.0f Ats: taken as settled\n", n, atLeast)
			return true, nil
		}
		return n >= atLeast && time.Since(since) >= quiet, nil
	})
	if err != nil {
		return fmt.Errorf("the manager did not settle after %.0f reconciles within %s (%.0f so far): %w",
			atLeast, timeout, last, errors.Join(err, lastErr))
	}
	fmt.Printf("the manager settled at %.0f reconciles\n", last)
	return nil
}

// sampler samples the manager's working set every interval in the
// background, from whichever node its pod runs on, until stopped. Failed
// samples (the manager starting, a slow docker exec) are counted, not fatal.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	peak float64
	n    int
	errs int
	last error
}

func (b *bench) startSampling(ctx context.Context, interval time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			if mib, err := b.managerMemoryMiB(ctx); err != nil {
				s.errs, s.last = s.errs+1, err
			} else {
				s.peak, s.n = max(s.peak, mib), s.n+1
			}
			select {
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	}()
	return s
}

// finish stops the sampler and returns the peak of its samples; an error
// when it took none.
func (s *sampler) finish() (float64, error) {
	close(s.stop)
	<-s.done
	if s.n == 0 {
		return 0, fmt.Errorf("no memory sample (%d failed; last: %w)", s.errs, cmpErr(s.last))
	}
	return s.peak, nil
}

func cmpErr(err error) error {
	if err == nil {
		return errors.New("none taken")
	}
	return err
}

// containerID is the runtime's id of a container from its status ("containerd://<id>").
func containerID(s *corev1.ContainerStatus) string {
	_, id, found := strings.Cut(s.ContainerID, "://")
	if !found {
		return s.ContainerID
	}
	return id
}
