package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// sampleAts is one At in every state the table distinguishes, relative to testNow.
func sampleAts() []cnatv1alpha1.At {
	at := func(ns, name string, schedule time.Duration, command string, st cnatv1alpha1.AtStatus) cnatv1alpha1.At {
		return cnatv1alpha1.At{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       cnatv1alpha1.AtSpec{Schedule: FormatSchedule(testNow.Add(schedule)), Command: command},
			Status:     st,
		}
	}
	ago := func(d time.Duration) *metav1.MicroTime { return ptr.To(metav1.NewMicroTime(testNow.Add(-d))) }
	done := func(r cnatv1alpha1.Result, code *int32, reason, msg string, finished time.Duration) cnatv1alpha1.AtStatus {
		st := cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhaseDone, Result: r, ExitCode: code, Reason: reason, Message: msg,
			CompletionTime: ago(finished)}
		if r != cnatv1alpha1.ResultMissed { // a missed At never had a pod
			st.PodName = "pod-" + strings.ToLower(string(r))
		}
		return st
	}
	return []cnatv1alpha1.At{
		at("team", "brand-new", 30*time.Second, "echo new", cnatv1alpha1.AtStatus{}),
		at("team", "report", 4*time.Minute+12*time.Second, "./report | gzip > /out/r.gz",
			cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhasePending, Reason: cnatv1alpha1.ReasonScheduled}),
		at("team", "overdue", -2*time.Minute, "echo late",
			cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhasePending, Reason: "Unschedulable", Message: "0/1 nodes are available"}),
		at("team", "migrate", -20*time.Second, "./migrate --to v42",
			cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhaseRunning, Reason: cnatv1alpha1.ReasonPodCreated, PodName: "migrate-4f2a9c1b7e"}),
		at("team", "hello", -3*time.Minute, "echo hello",
			done(cnatv1alpha1.ResultSucceeded, ptr.To[int32](0), cnatv1alpha1.ReasonSucceeded, "the command exited 0", 2*time.Minute+55*time.Second)),
		at("ops", "broken", -90*time.Minute, "exit 3",
			done(cnatv1alpha1.ResultFailed, ptr.To[int32](3), cnatv1alpha1.ReasonPodFailed, "the command exited with 3", 89*time.Minute)),
		at("ops", "vanished", -26*time.Hour, "sleep 600",
			done(cnatv1alpha1.ResultFailed, nil, cnatv1alpha1.ReasonPodDeleted, "its pod was deleted before it finished", 25*time.Hour)),
		at("ops", "late", -10*24*time.Hour, "echo never",
			done(cnatv1alpha1.ResultMissed, nil, cnatv1alpha1.ReasonMissedStartingDeadline, "not started within 30s of its schedule", 10*24*time.Hour)),
	}
}

func TestTableGolden(t *testing.T) {
	for _, c := range []struct {
		file                string
		allNamespaces, wide bool
	}{
		{"table.golden", false, false},
		{"table-wide.golden", false, true},
		{"table-all-namespaces.golden", true, false},
	} {
		t.Run(c.file, func(t *testing.T) {
			var out bytes.Buffer
			if err := PrintTable(&out, sampleAts(), testNow, c.allNamespaces, c.wide); err != nil {
				t.Fatal(err)
			}
			golden(t, c.file, out.String())
		})
	}
}

func TestTableReasonOnlyWhenNotSucceeded(t *testing.T) {
	rows := Table(sampleAts(), testNow).Rows
	reasons := map[string]any{}
	for _, r := range rows {
		reasons[r.Cells[0].(string)] = r.Cells[6]
	}
	want := map[string]any{"brand-new": "", "report": "", "overdue": "Unschedulable", "migrate": "",
		"hello": "", "broken": "PodFailed", "vanished": "PodDeleted", "late": "MissedStartingDeadline"}
	for name, reason := range want {
		if reasons[name] != reason {
			t.Errorf("%s: REASON = %q, want %q", name, reasons[name], reason)
		}
	}
}
