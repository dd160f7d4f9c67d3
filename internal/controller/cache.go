package controller

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

// CacheOptions keeps in memory only the operator's own pods that it has not
// released yet, however many other pods the cluster runs and however many
// finished runs users keep; only the given namespaces (all if none); and of
// each cached object only what the controller reads: finished Ats stay in
// the cluster by the tens of thousands, and the manager holds all of them.
func CacheOptions(namespaces []string) cache.Options {
	opts := cache.Options{
		// Nothing here reads managedFields; dropping them saves memory per cached object.
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {
				Label:     runPods(),
				Transform: trimPod,
			},
			&cnatv1alpha1.At{}: {Transform: trimAt},
		},
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// runPods selects the operator's pods that it has not released yet: a
// released pod (at.ReleasedLabel) leaves the cache as a deleted one would,
// and its At is reconciled once more for it (the watch's DELETED event
// carries the pod as it was before the release, so no predicate can tell);
// that reconcile finds the At DONE and makes no request.
func runPods() labels.Selector {
	notReleased, err := labels.NewRequirement(at.ReleasedLabel, selection.DoesNotExist, nil)
	if err != nil {
		panic(err) // a constant, valid label key
	}
	return labels.SelectorFromSet(labels.Set{at.ManagedByLabel: at.ManagedByValue}).Add(*notReleased)
}

// trimAt drops the managedFields and kubectl's last-applied copy of the At
// (as large as its spec again). Every write of an At is a status patch or a
// delete, never an update of the cached object, so the cluster keeps both.
// Anything that is not an At (a tombstone) passes unchanged.
func trimAt(obj any) (any, error) {
	a, ok := obj.(*cnatv1alpha1.At)
	if !ok {
		return obj, nil
	}
	a.ManagedFields = nil
	delete(a.Annotations, corev1.LastAppliedConfigAnnotation)
	if len(a.Annotations) == 0 {
		a.Annotations = nil
	}
	return a, nil
}

// trimPod keeps of a pod only what the controller and package at read, in a
// new object, so that whatever else Kubernetes or a template puts in a pod
// never reaches the cache:
//   - name, namespace, uid, resourceVersion: the pod's identity, the delete
//     precondition, and the priority of an update event;
//   - the operator's labels (RelabelPod), its start-time annotation (the
//     RUNNING start time), finalizers (ReleasePod), the controller reference
//     (ownership, the queued At, the orphan index), creation and deletion
//     timestamps;
//   - status phase, reason and message (how it failed), the PodScheduled
//     condition (Unschedulable), and of each container status its name and
//     waiting state (what holds the pod), plus whether the command's
//     container runs and its exit code and reason.
//
// The spec is never read: the At's spec says what the pod runs. Writes to
// pods are patches naming just what they change, so the cluster keeps the rest.
// Anything that is not a pod (a tombstone) passes unchanged.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	trimmed := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			UID:               pod.UID,
			ResourceVersion:   pod.ResourceVersion,
			CreationTimestamp: pod.CreationTimestamp,
			DeletionTimestamp: pod.DeletionTimestamp,
			Labels:            only(pod.Labels, at.ManagedByLabel, at.AtUIDLabel),
			Annotations:       only(pod.Annotations, at.StartTimeAnnotation),
			Finalizers:        pod.Finalizers,
		},
		Status: corev1.PodStatus{
			Phase:                 pod.Status.Phase,
			Reason:                pod.Status.Reason,
			Message:               pod.Status.Message,
			InitContainerStatuses: containerStatuses(pod.Status.InitContainerStatuses, ""),
			ContainerStatuses:     containerStatuses(pod.Status.ContainerStatuses, at.ContainerName),
		},
	}
	if owner := metav1.GetControllerOf(pod); owner != nil {
		trimmed.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			trimmed.Status.Conditions = append(trimmed.Status.Conditions,
				corev1.PodCondition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message})
		}
	}
	return trimmed, nil
}

// only is the entries of m under keys; nil when there are none.
func only(m map[string]string, keys ...string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = make(map[string]string, len(keys))
			}
			out[k] = v
		}
	}
	return out
}

// containerStatuses keeps each container's name and waiting state, and for
// the container named run also whether it runs and how it terminated: its
// exit code and reason, not its message (the tail of its log).
func containerStatuses(statuses []corev1.ContainerStatus, run string) []corev1.ContainerStatus {
	if len(statuses) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(statuses))
	for i, cs := range statuses {
		out[i] = corev1.ContainerStatus{Name: cs.Name, State: corev1.ContainerState{Waiting: cs.State.Waiting}}
		if cs.Name != run {
			continue
		}
		if cs.State.Running != nil {
			out[i].State.Running = &corev1.ContainerStateRunning{}
		}
		if t := cs.State.Terminated; t != nil {
			out[i].State.Terminated = &corev1.ContainerStateTerminated{ExitCode: t.ExitCode, Reason: t.Reason}
		}
	}
	return out
}
