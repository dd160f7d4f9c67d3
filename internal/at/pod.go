// Package at holds the At state machine as pure functions: what the
// controller should do next for a given At, its pod and the current time, and
// how that pod looks. Nothing here talks to the API server or reads a clock.
package at

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"maps"
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
	// ReleasedLabel is set, with the value "true", in the same patch that
	// removes the run finalizer: the pod has nothing left to tell the
	// operator, and the manager's cache leaves it out, so that finished runs
	// kept by the tens of thousands cost the manager no memory.
	ReleasedLabel = "cnat.programming-kubernetes.info/released"
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

// PodFor builds the pod that runs at's command, created at start: from
// spec.template if there is one, with its container named ContainerName
// (added if missing) running the command, never restarted. What the template
// leaves unset gets the Pod Security "restricted" profile's settings and no
// service account token; the operator's name, labels, annotations, finalizer
// and owner reference replace the template's.
func PodFor(at *cnatv1alpha1.At, defaultImage string, start time.Time) *corev1.Pod {
	var template corev1.PodTemplateSpec
	if at.Spec.Template != nil {
		template = *at.Spec.Template.DeepCopy()
	}
	spec := template.Spec
	i := slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == ContainerName })
	if i < 0 {
		spec.Containers = append([]corev1.Container{{Name: ContainerName}}, spec.Containers...)
		i = 0
	}
	c := &spec.Containers[i]
	c.Image = cmp.Or(c.Image, at.Spec.Image, defaultImage)
	c.Command, c.Args = []string{"sh", "-c", at.Spec.Command}, nil
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if c.SecurityContext == nil {
		c.SecurityContext = &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		}
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	}

	// The command runs once: a restarted container would run it again.
	spec.RestartPolicy = corev1.RestartPolicyNever
	if at.Spec.ActiveDeadlineSeconds != nil {
		spec.ActiveDeadlineSeconds = at.Spec.ActiveDeadlineSeconds
	}
	// A token only for a template that names the identity it runs as.
	if spec.AutomountServiceAccountToken == nil && spec.ServiceAccountName == "" {
		spec.AutomountServiceAccountToken = ptr.To(false)
	}
	if spec.EnableServiceLinks == nil {
		spec.EnableServiceLinks = ptr.To(false)
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = ptr.To[int64](terminationGrace)
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To(RunAsUser),
			RunAsGroup:     ptr.To(RunAsUser),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
	}

	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:       PodName(at),
			Namespace:  at.Namespace,
			Labels:     merged(template.Labels, RunLabels(at)),
			Finalizers: []string{cnatv1alpha1.RunFinalizer},
			Annotations: merged(template.Annotations, map[string]string{
				AtNameAnnotation:    at.Name,
				StartTimeAnnotation: start.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano),
			}),
			OwnerReferences: []metav1.OwnerReference{
				*metav1.NewControllerRef(at, cnatv1alpha1.GroupVersion.WithKind("At")),
			},
		},
		Spec: spec,
	}
}

// merged is base with ours laid over it; ours alone when base is empty, so
// that a template-less At allocates nothing more than before.
func merged(base, ours map[string]string) map[string]string {
	if len(base) == 0 {
		return ours
	}
	out := make(map[string]string, len(base)+len(ours))
	maps.Copy(out, base)
	maps.Copy(out, ours)
	return out
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
