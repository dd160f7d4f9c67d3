package at

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

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

// The merge of spec.template under the operator's fields.
func TestPodForTemplate(t *testing.T) {
	start := time.Date(2026, 2, 10, 20, 35, 0, 0, time.UTC)
	newAt := func(template *corev1.PodTemplateSpec) *cnatv1alpha1.At {
		return &cnatv1alpha1.At{
			ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "ns", UID: "u1"},
			Spec:       cnatv1alpha1.AtSpec{Command: "echo hi", Image: "spec-image:1", Template: template},
		}
	}
	plain := PodFor(newAt(nil), "default-image", start)
	command := func(pod *corev1.Pod) *corev1.Container {
		for i := range pod.Spec.Containers {
			if pod.Spec.Containers[i].Name == ContainerName {
				return &pod.Spec.Containers[i]
			}
		}
		t.Fatalf("no container %s in %+v", ContainerName, pod.Spec.Containers)
		return nil
	}
	tests := []struct {
		name     string
		template *corev1.PodTemplateSpec
		checks   map[string]func(*corev1.Pod) bool
	}{
		{name: "an empty template: the pod of an At without one", template: &corev1.PodTemplateSpec{},
			checks: map[string]func(*corev1.Pod) bool{
				"equal to the template-less pod": func(p *corev1.Pod) bool { return equality.Semantic.DeepEqual(p, plain) },
			}},
		{name: "env, resources, volumes: kept; the command container added with the operator's defaults",
			template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: ContainerName,
					Env:          []corev1.EnvVar{{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}},
					Resources:    corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				}},
				InitContainers: []corev1.Container{{Name: "fetch", Image: "fetch:1"}},
				Volumes:        []corev1.Volume{{Name: "data"}},
				NodeSelector:   map[string]string{"disk": "ssd"},
			}},
			checks: map[string]func(*corev1.Pod) bool{
				"env kept":    func(p *corev1.Pod) bool { return command(p).Env[0].ValueFrom.SecretKeyRef.Key == "k" },
				"limits kept": func(p *corev1.Pod) bool { return command(p).Resources.Limits.Cpu().String() == "100m" },
				"volumes kept": func(p *corev1.Pod) bool {
					return p.Spec.Volumes[0].Name == "data" && command(p).VolumeMounts[0].MountPath == "/data"
				},
				"init container kept": func(p *corev1.Pod) bool { return p.Spec.InitContainers[0].Name == "fetch" },
				"nodeSelector kept":   func(p *corev1.Pod) bool { return p.Spec.NodeSelector["disk"] == "ssd" },
				"image from spec.image": func(p *corev1.Pod) bool {
					return len(p.Spec.Containers) == 1 && command(p).Image == "spec-image:1"
				},
				"restricted defaults": func(p *corev1.Pod) bool {
					return *p.Spec.SecurityContext.RunAsNonRoot && !*command(p).SecurityContext.AllowPrivilegeEscalation
				},
				"no token": func(p *corev1.Pod) bool { return !*p.Spec.AutomountServiceAccountToken },
			}},
		{name: "a service account named: its token mounted",
			template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{ServiceAccountName: "reader"}},
			checks: map[string]func(*corev1.Pod) bool{
				"service account kept":  func(p *corev1.Pod) bool { return p.Spec.ServiceAccountName == "reader" },
				"token left to the SA":  func(p *corev1.Pod) bool { return p.Spec.AutomountServiceAccountToken == nil },
				"container still added": func(p *corev1.Pod) bool { return command(p).Image == "spec-image:1" },
			}},
		{name: "automountServiceAccountToken asked for: kept",
			template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{AutomountServiceAccountToken: ptr.To(true)}},
			checks: map[string]func(*corev1.Pod) bool{
				"token": func(p *corev1.Pod) bool { return *p.Spec.AutomountServiceAccountToken },
			}},
		{name: "the template's own image and security context: kept",
			template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)},
				Containers: []corev1.Container{{Name: ContainerName, Image: "template-image:2",
					SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)}}},
			}},
			checks: map[string]func(*corev1.Pod) bool{
				"template image":       func(p *corev1.Pod) bool { return command(p).Image == "template-image:2" },
				"pod security context": func(p *corev1.Pod) bool { return *p.Spec.SecurityContext.RunAsUser == 1000 },
				"container security context": func(p *corev1.Pod) bool {
					return *command(p).SecurityContext.ReadOnlyRootFilesystem
				},
			}},
		{name: "a template fighting the operator's fields: the operator's win",
			template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "other",
					Labels:          map[string]string{ManagedByLabel: "someone", AtUIDLabel: "u9", "team": "a"},
					Annotations:     map[string]string{AtNameAnnotation: "other", StartTimeAnnotation: "never", "note": "x"},
					Finalizers:      []string{"example.com/keep"},
					OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Name: "j", UID: "j1", Controller: ptr.To(true)}},
				},
				Spec: corev1.PodSpec{
					RestartPolicy:         corev1.RestartPolicyOnFailure,
					ActiveDeadlineSeconds: ptr.To[int64](999),
					Containers:            []corev1.Container{{Name: ContainerName, Command: []string{"rm", "-rf"}, Args: []string{"/"}}},
				},
			},
			checks: map[string]func(*corev1.Pod) bool{
				"name and namespace": func(p *corev1.Pod) bool { return p.Name == PodName(newAt(nil)) && p.Namespace == "ns" },
				"operator labels win": func(p *corev1.Pod) bool {
					return p.Labels[ManagedByLabel] == ManagedByValue && p.Labels[AtUIDLabel] == "u1"
				},
				"other labels kept":    func(p *corev1.Pod) bool { return p.Labels["team"] == "a" },
				"operator annotations": func(p *corev1.Pod) bool { return p.Annotations[AtNameAnnotation] == "demo" },
				"start time ours": func(p *corev1.Pod) bool {
					started, ok := PodStartTime(p)
					return ok && started.Equal(start)
				},
				"other annotations kept": func(p *corev1.Pod) bool { return p.Annotations["note"] == "x" },
				"only the run finalizer": func(p *corev1.Pod) bool {
					return len(p.Finalizers) == 1 && p.Finalizers[0] == cnatv1alpha1.RunFinalizer
				},
				"only the At as owner": func(p *corev1.Pod) bool {
					return len(p.OwnerReferences) == 1 && metav1.IsControlledBy(p, newAt(nil))
				},
				"restartPolicy Never":    func(p *corev1.Pod) bool { return p.Spec.RestartPolicy == corev1.RestartPolicyNever },
				"template deadline kept": func(p *corev1.Pod) bool { return *p.Spec.ActiveDeadlineSeconds == 999 },
				"command is sh -c spec.command": func(p *corev1.Pod) bool {
					return strings.Join(command(p).Command, "|") == "sh|-c|echo hi" && command(p).Args == nil
				},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAt(tc.template)
			before := a.DeepCopy()
			pod := PodFor(a, "default-image", start)
			for what, check := range tc.checks {
				if !check(pod) {
					t.Errorf("%s: not so in %+v", what, pod)
				}
			}
			if !equality.Semantic.DeepEqual(a, before) {
				t.Error("PodFor modified the At's template")
			}
		})
	}
	withDeadline := newAt(&corev1.PodTemplateSpec{Spec: corev1.PodSpec{ActiveDeadlineSeconds: ptr.To[int64](999)}})
	withDeadline.Spec.ActiveDeadlineSeconds = ptr.To[int64](60)
	if got := *PodFor(withDeadline, "default-image", start).Spec.ActiveDeadlineSeconds; got != 60 {
		t.Errorf("spec.activeDeadlineSeconds lost to the template's: %d", got)
	}
}
