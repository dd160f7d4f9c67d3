package plugin

import (
	"testing"

	"k8s.io/utils/ptr"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

func TestExitCode(t *testing.T) {
	done := func(r cnatv1alpha1.Result, code *int32, reason string) cnatv1alpha1.AtStatus {
		return cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhaseDone, Result: r, ExitCode: code, Reason: reason}
	}
	for _, c := range []struct {
		name   string
		status cnatv1alpha1.AtStatus
		code   int
		done   bool
	}{
		{"new", cnatv1alpha1.AtStatus{}, 0, false},
		{"pending", cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhasePending}, 0, false},
		{"running", cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhaseRunning, ExitCode: ptr.To[int32](3)}, 0, false},
		{"succeeded", done(cnatv1alpha1.ResultSucceeded, ptr.To[int32](0), "Succeeded"), 0, true},
		{"failed with 1", done(cnatv1alpha1.ResultFailed, ptr.To[int32](1), "PodFailed"), 1, true},
		{"failed with 3", done(cnatv1alpha1.ResultFailed, ptr.To[int32](3), "PodFailed"), 3, true},
		{"failed with 255", done(cnatv1alpha1.ResultFailed, ptr.To[int32](255), "PodFailed"), 255, true},
		{"killed by SIGKILL (deadline, OOM)", done(cnatv1alpha1.ResultFailed, ptr.To[int32](137), "OOMKilled"), 137, true},
		{"failed without a code (pod deleted)", done(cnatv1alpha1.ResultFailed, nil, "PodDeleted"), ExitFailedWithoutCode, true},
		{"failed with code 0 (deleted after it exited 0)", done(cnatv1alpha1.ResultFailed, ptr.To[int32](0), "PodDeleted"), ExitFailedWithoutCode, true},
		{"failed with a code beyond 255", done(cnatv1alpha1.ResultFailed, ptr.To[int32](1073807364), "PodFailed"), ExitFailedWithoutCode, true},
		{"failed with a negative code", done(cnatv1alpha1.ResultFailed, ptr.To[int32](-1), "PodFailed"), ExitFailedWithoutCode, true},
		{"missed", done(cnatv1alpha1.ResultMissed, nil, "MissedStartingDeadline"), ExitMissed, true},
		{"a result this version does not know", done("Cancelled", nil, "Cancelled"), ExitFailedWithoutCode, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, isDone := ExitCode(c.status)
			if code != c.code || isDone != c.done {
				t.Errorf("ExitCode = %d, %t; want %d, %t", code, isDone, c.code, c.done)
			}
		})
	}
}

func TestExitCodesAreDistinct(t *testing.T) {
	seen := map[int]string{}
	for name, code := range map[string]int{"succeeded": ExitSucceeded, "failed without code": ExitFailedWithoutCode,
		"missed": ExitMissed, "timeout": ExitTimeout, "wait error": ExitWaitError, "kubectl error": 1} {
		if other, dup := seen[code]; dup {
			t.Errorf("%s and %s share exit code %d", name, other, code)
		}
		seen[code] = name
	}
}

func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		status cnatv1alpha1.AtStatus
		want   string
	}{
		{cnatv1alpha1.AtStatus{Result: cnatv1alpha1.ResultSucceeded, ExitCode: ptr.To[int32](0), Reason: "Succeeded", Message: "exited 0"},
			"at/x: Succeeded, exit code 0"},
		{cnatv1alpha1.AtStatus{Result: cnatv1alpha1.ResultFailed, ExitCode: ptr.To[int32](3), Reason: "PodFailed", Message: "the command exited with 3"},
			"at/x: Failed, exit code 3 (PodFailed: the command exited with 3)"},
		{cnatv1alpha1.AtStatus{Result: cnatv1alpha1.ResultFailed, Reason: "PodDeleted"},
			"at/x: Failed (PodDeleted)"},
		{cnatv1alpha1.AtStatus{Result: cnatv1alpha1.ResultMissed, Reason: "MissedStartingDeadline", Message: "not started within 30s"},
			"at/x: Missed (MissedStartingDeadline: not started within 30s)"},
	} {
		if got := Outcome("x", c.status); got != c.want {
			t.Errorf("Outcome = %q, want %q", got, c.want)
		}
	}
}
