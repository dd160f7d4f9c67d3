package controller

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// The CRD's OpenAPI and CEL rules, as the real API server applies them. This
// table owns admission: no other tier repeats it (a rejected create never
// reaches the controller, so a cluster would prove nothing more).
func TestAdmissionValidation(t *testing.T) {
	ns := newNamespace(t, k8sClient)
	valid := cnatv1alpha1.AtSpec{Schedule: "2026-02-10T20:35:00Z", Command: "echo Hello Kubernetes"}
	tests := []struct {
		name    string
		mutate  func(*cnatv1alpha1.AtSpec)
		wantErr string // "" means accepted
	}{
		{"the seed's example", func(*cnatv1alpha1.AtSpec) {}, ""},
		{"offset and fractional seconds", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "2026-02-10T21:35:00.123456789+01:00" }, ""},
		{"leap day", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "2028-02-29T00:00:00Z" }, ""},
		{"every optional field", func(s *cnatv1alpha1.AtSpec) {
			s.Image = "registry.example:5000/team/tool:v1.2"
			s.StartingDeadlineSeconds, s.ActiveDeadlineSeconds, s.TTLSecondsAfterFinished = ptr.To[int64](1), ptr.To[int64](1), ptr.To[int32](0)
		}, ""},
		{"February 30", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "2026-02-30T10:00:00Z" }, "spec.schedule"},
		{"February 29 of a common year", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "2026-02-29T10:00:00Z" }, "spec.schedule"},
		{"no offset", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "2026-02-10T20:35:00" }, "spec.schedule"},
		{"a bare date", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "2026-02-10" }, "spec.schedule"},
		{"garbage", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "tomorrow at noon" }, "spec.schedule"},
		{"hour 25", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "2026-02-10T25:00:00Z" }, "spec.schedule"},
		{"empty schedule", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "" }, "spec.schedule"},
		{"empty command", func(s *cnatv1alpha1.AtSpec) { s.Command = "" }, "spec.command"},
		{"oversize command", func(s *cnatv1alpha1.AtSpec) { s.Command = strings.Repeat("x", 8193) }, "spec.command"},
		{"image with spaces", func(s *cnatv1alpha1.AtSpec) { s.Image = "busy box" }, "spec.image"},
		{"image in upper case", func(s *cnatv1alpha1.AtSpec) { s.Image = "BusyBox" }, "spec.image"},
		{"image with an empty tag", func(s *cnatv1alpha1.AtSpec) { s.Image = "busybox:" }, "spec.image"},
		{"zero starting deadline", func(s *cnatv1alpha1.AtSpec) { s.StartingDeadlineSeconds = ptr.To[int64](0) }, "spec.startingDeadlineSeconds"},
		{"negative starting deadline", func(s *cnatv1alpha1.AtSpec) { s.StartingDeadlineSeconds = ptr.To[int64](-5) }, "spec.startingDeadlineSeconds"},
		{"zero active deadline", func(s *cnatv1alpha1.AtSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](0) }, "spec.activeDeadlineSeconds"},
		{"negative active deadline", func(s *cnatv1alpha1.AtSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](-1) }, "spec.activeDeadlineSeconds"},
		{"active deadline beyond a pod's int32", func(s *cnatv1alpha1.AtSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](1 << 31) }, "spec.activeDeadlineSeconds"},
		{"largest active deadline a pod takes", func(s *cnatv1alpha1.AtSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](1<<31 - 1) }, ""},
		{"starting deadline near MaxInt64", func(s *cnatv1alpha1.AtSpec) { s.StartingDeadlineSeconds = ptr.To[int64](math.MaxInt64) }, "spec.startingDeadlineSeconds"},
		{"last instant of year 9999 in UTC", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "9999-12-31T22:59:59.999-01:00" }, ""},
		{"year 10000 once in UTC", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "9999-12-31T23:30:00-01:00" }, "spec.schedule must fall in the years 0001 to 9999"},
		{"year 0000 once in UTC", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "0001-01-01T00:30:00+01:00" }, "spec.schedule must fall in the years 0001 to 9999"},
		{"first instant of year 0001 in UTC", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "0001-01-01T01:00:00+01:00" }, ""},
		{"negative TTL", func(s *cnatv1alpha1.AtSpec) { s.TTLSecondsAfterFinished = ptr.To[int32](-1) }, "spec.ttlSecondsAfterFinished"},
		{"suspended", func(s *cnatv1alpha1.AtSpec) { s.Suspend = ptr.To(true) }, ""},
		{"a local time in a zone", func(s *cnatv1alpha1.AtSpec) { s.Schedule, s.TimeZone = "2026-03-29T02:30:00", "Europe/Berlin" }, ""},
		{"a local time in a half-hour zone", func(s *cnatv1alpha1.AtSpec) { s.Schedule, s.TimeZone = "2026-02-11T02:05:00.5", "Asia/Kolkata" }, ""},
		{"an offset and a zone", func(s *cnatv1alpha1.AtSpec) { s.TimeZone = "Europe/Berlin" }, "spec.schedule"},
		{"a local time without a zone", func(s *cnatv1alpha1.AtSpec) { s.Schedule = "2026-03-29T02:30:00" }, "spec.schedule"},
		{"an unknown zone", func(s *cnatv1alpha1.AtSpec) { s.Schedule, s.TimeZone = "2026-03-29T02:30:00", "Mars/Olympus_Mons" }, "spec.timeZone must be a time zone the API server knows"},
		{"an unknown zone in a known area", func(s *cnatv1alpha1.AtSpec) { s.Schedule, s.TimeZone = "2026-03-29T02:30:00", "Europe/Atlantis" }, "spec.timeZone must be a time zone the API server knows"},
		{"the API server's Local zone", func(s *cnatv1alpha1.AtSpec) { s.Schedule, s.TimeZone = "2026-03-29T02:30:00", "Local" }, "spec.timeZone"},
		{"a fixed offset as a zone", func(s *cnatv1alpha1.AtSpec) { s.Schedule, s.TimeZone = "2026-03-29T02:30:00", "+05:30" }, "spec.timeZone"},
		{"an empty zone", func(s *cnatv1alpha1.AtSpec) { s.Schedule, s.TimeZone = "2026-03-29T02:30:00", "" }, "spec.schedule"},
		{"a template with env, resources, volumes, an init container", func(s *cnatv1alpha1.AtSpec) {
			s.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "fetch", Image: "busybox:1.37"}},
				Containers: []corev1.Container{{Name: "command",
					Env:       []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
				}},
				Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			}}
		}, ""},
		{"a template without the command container", func(s *cnatv1alpha1.AtSpec) {
			s.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{}, NodeSelector: map[string]string{"a": "b"}}}
		}, ""},
		{"a template with restartPolicy Never", func(s *cnatv1alpha1.AtSpec) {
			s.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{}, RestartPolicy: corev1.RestartPolicyNever}}
		}, ""},
		{"a template with a second container", func(s *cnatv1alpha1.AtSpec) {
			s.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "command"}, {Name: "sidecar", Image: "busybox:1.37"}}}}
		}, "spec.template.spec.containers may hold only the container named command"},
		{"a template with another container only", func(s *cnatv1alpha1.AtSpec) {
			s.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox:1.37"}}}}
		}, "spec.template.spec.containers may hold only the container named command"},
		{"a template with restartPolicy Always", func(s *cnatv1alpha1.AtSpec) {
			s.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{}, RestartPolicy: corev1.RestartPolicyAlways}}
		}, "spec.template.spec.restartPolicy"},
		{"a template setting the command", func(s *cnatv1alpha1.AtSpec) {
			s.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "command", Command: []string{"rm"}}}}}
		}, "must not set command or args"},
		{"a template setting args", func(s *cnatv1alpha1.AtSpec) {
			s.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "command", Args: []string{"-rf"}}}}}
		}, "must not set command or args"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := &cnatv1alpha1.At{Spec: valid}
			obj.Name, obj.Namespace = "v-"+rand.String(6), ns
			tc.mutate(&obj.Spec)
			err := k8sClient.Create(context.Background(), obj)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("rejected a valid At: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("accepted an invalid At: %+v", obj.Spec)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error does not name %s: %v", tc.wantErr, err)
			}
		})
	}
}

// Every sample in config/samples is an At the API server takes as it is.
func TestSamplesAreAdmitted(t *testing.T) {
	samples, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "cnat_*.yaml"))
	if err != nil || len(samples) < 3 {
		t.Fatalf("samples: %v, %v", samples, err)
	}
	for _, path := range samples {
		t.Run(filepath.Base(path), func(t *testing.T) {
			applyFile(context.Background(), t, k8sClient, path, newNamespace(t, k8sClient))
		})
	}
}
