package controller

import (
	"context"
	"math"
	"strings"
	"testing"

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
