package at

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

func TestPodName(t *testing.T) {
	long := strings.Repeat("a", 200) + "." + strings.Repeat("b", 52)
	for _, name := range []string{"demo", "a", "with.dots.in-it", long, strings.Repeat("x-", 126) + "x"} {
		at := &cnatv1alpha1.At{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "u1"}}
		got := PodName(at)
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Errorf("PodName(%d chars) = %q is not a DNS label: %v", len(name), got, errs)
		}
		if PodName(at.DeepCopy()) != got {
			t.Errorf("PodName(%q) is not deterministic", name)
		}
		other := at.DeepCopy()
		other.UID = types.UID("u2")
		if PodName(other) == got {
			t.Errorf("PodName(%q) is the same for a new At of the same name", name)
		}
	}
	if got := PodName(&cnatv1alpha1.At{ObjectMeta: metav1.ObjectMeta{Name: "demo", UID: "u"}}); !strings.HasPrefix(got, "demo-") {
		t.Errorf("PodName(demo) = %q, want the At's name as its prefix", got)
	}
}

func TestPodFor(t *testing.T) {
	at := &cnatv1alpha1.At{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "ns", UID: "u1"},
		Spec:       cnatv1alpha1.AtSpec{Command: "echo hi; exit 3"},
	}
	start := time.Date(2026, 2, 10, 20, 35, 0, 123456789, time.UTC)
	pod := PodFor(at, "default-image", start)
	started, startedOK := PodStartTime(pod)
	c := pod.Spec.Containers[0]
	checks := map[string]bool{
		"name is PodName":                pod.Name == PodName(at) && pod.Namespace == "ns",
		"controller owner reference":     metav1.IsControlledBy(pod, at),
		"managed-by label for the cache": pod.Labels[ManagedByLabel] == ManagedByValue,
		"At UID label":                   pod.Labels[AtUIDLabel] == "u1",
		"restartPolicy Never":            pod.Spec.RestartPolicy == corev1.RestartPolicyNever,
		"sh -c command":                  strings.Join(c.Command, "|") == "sh|-c|echo hi; exit 3",
		"default image":                  c.Image == "default-image",
		"pull IfNotPresent":              c.ImagePullPolicy == corev1.PullIfNotPresent,
		"runAsNonRoot":                   *pod.Spec.SecurityContext.RunAsNonRoot && *pod.Spec.SecurityContext.RunAsUser != 0,
		"seccomp RuntimeDefault":         pod.Spec.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
		"drop ALL":                       len(c.SecurityContext.Capabilities.Drop) == 1 && c.SecurityContext.Capabilities.Drop[0] == "ALL",
		"no privilege escalation":        !*c.SecurityContext.AllowPrivilegeEscalation,
		"no service account token":       !*pod.Spec.AutomountServiceAccountToken,
		"short termination grace":        *pod.Spec.TerminationGracePeriodSeconds <= 10,
		"start time to the microsecond":  startedOK && started.Equal(start.Truncate(time.Microsecond)),
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("%s: not so in %+v", what, pod)
		}
	}
	at.Spec.Image = "own:1"
	if got := PodFor(at, "default-image", start).Spec.Containers[0].Image; got != "own:1" {
		t.Errorf("spec.image ignored: %q", got)
	}
}
