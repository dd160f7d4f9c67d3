// Package at holds the At state machine as pure functions: what the
// controller should do next for a given At, its pod and the current time, and
// how that pod looks. Nothing here talks to the API server or reads a clock.
package at

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

const (
	// ManagedByLabel marks every pod the operator creates; the manager's pod
	// cache holds only pods carrying it.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "cnat"
	// AtUIDLabel ties a pod to its At (an At's name may be too long for a label value).
	AtUIDLabel = "cnat.programming-kubernetes.info/at-uid"
	// AtNameAnnotation names the At for humans reading the pod.
	AtNameAnnotation = "cnat.programming-kubernetes.info/at"
	// StartTimeAnnotation is when the pod was created, to the microsecond
	// (creationTimestamp has whole seconds): the At's status.startTime.
	StartTimeAnnotation = "cnat.programming-kubernetes.info/start-time"

	// ContainerName is the name of the one container that runs the command.
	ContainerName = "command"
	// RunAsUser is the unprivileged user the command runs as, so that images
	// whose default user is root still pass runAsNonRoot.
	RunAsUser int64 = 65532

	maxPodNameLength = 63
	hashLength       = 10
	terminationGrace = 5
)

// PodName derives the pod's name from the At alone, so that every
// reconciliation, before or after a restart, asks for the same pod: the second
// create fails with AlreadyExists instead of starting a second run. The name is
// a DNS label (hostname-safe) for any At name up to 253 characters.
func PodName(at *cnatv1alpha1.At) string {
	sum := sha256.Sum256([]byte(at.Namespace + "/" + at.Name + "/" + string(at.UID)))
	suffix := hex.EncodeToString(sum[:])[:hashLength]
	prefix := strings.ReplaceAll(at.Name, ".", "-")
	if max := maxPodNameLength - hashLength - 1; len(prefix) > max {
		prefix = prefix[:max]
	}
	return strings.TrimRight(prefix, "-") + "-" + suffix
}

// PodFor builds the pod that runs at's command, created at start: one
// container, never restarted, with the Pod Security "restricted" profile's
// settings.
func PodFor(at *cnatv1alpha1.At, defaultImage string, start time.Time) *corev1.Pod {
	image := at.Spec.Image
	if image == "" {
		image = defaultImage
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:       PodName(at),
			Namespace:  at.Namespace,
			Labels:     RunLabels(at),
			Finalizers: []string{cnatv1alpha1.RunFinalizer},
			Annotations: map[string]string{
				AtNameAnnotation:    at.Name,
				StartTimeAnnotation: start.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano),
			},
			OwnerReferences: []metav1.OwnerReference{
				*metav1.NewControllerRef(at, cnatv1alpha1.GroupVersion.WithKind("At")),
			},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         at.Spec.ActiveDeadlineSeconds,
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](terminationGrace),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To(RunAsUser),
				RunAsGroup:     ptr.To(RunAsUser),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            ContainerName,
				Image:           image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"sh", "-c", at.Spec.Command},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			}},
		},
	}
}

// RunLabels are the labels every run pod carries: the manager's pod cache
// selects ManagedByLabel, and AtUIDLabel ties the pod to its At.
func RunLabels(at *cnatv1alpha1.At) map[string]string {
	return map[string]string{ManagedByLabel: ManagedByValue, AtUIDLabel: string(at.UID)}
}

func hasRunLabels(pod *corev1.Pod, at *cnatv1alpha1.At) bool {
	for k, v := range RunLabels(at) {
		if pod.Labels[k] != v {
			return false
		}
	}
	return true
}

// HasRunFinalizer says whether pod is still held for its At.
func HasRunFinalizer(pod *corev1.Pod) bool {
	return slices.Contains(pod.Finalizers, cnatv1alpha1.RunFinalizer)
}

// PodStartTime reads StartTimeAnnotation; false when it is missing or garbled.
func PodStartTime(pod *corev1.Pod) (time.Time, bool) {
	started, err := time.Parse(time.RFC3339Nano, pod.Annotations[StartTimeAnnotation])
	return started, err == nil
}
