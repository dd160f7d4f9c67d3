package at

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

var schedule = time.Date(2026, 2, 10, 20, 35, 0, 0, time.UTC)

// podStart is when ownPod's pods were created.
var podStart = schedule.Add(1500 * time.Microsecond)

func newAt(mutate ...func(*cnatv1alpha1.At)) *cnatv1alpha1.At {
	at := &cnatv1alpha1.At{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "ns", UID: "uid-1", Generation: 1},
		Spec:       cnatv1alpha1.AtSpec{Schedule: schedule.Format(time.RFC3339), Command: "echo Hello Kubernetes"},
	}
	for _, m := range mutate {
		m(at)
	}
	return at
}

func pendingStatus(at *cnatv1alpha1.At) {
	at.Status = cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhasePending, ScheduledTime: microTime(schedule), ObservedGeneration: at.Generation}
}

func runningStatus(at *cnatv1alpha1.At) {
	pendingStatus(at)
	at.Status.Phase = cnatv1alpha1.PhaseRunning
	at.Status.PodName = PodName(at)
	at.Status.StartTime = microTime(schedule)
}

func doneStatus(at *cnatv1alpha1.At) {
	runningStatus(at)
	at.Status.Phase = cnatv1alpha1.PhaseDone
	at.Status.Result = cnatv1alpha1.ResultSucceeded
	at.Status.CompletionTime = microTime(schedule.Add(time.Minute))
}

func ownPod(at *cnatv1alpha1.At, phase corev1.PodPhase, mutate ...func(*corev1.Pod)) *corev1.Pod {
	pod := PodFor(at, "img", podStart)
	pod.Status.Phase = phase
	for _, m := range mutate {
		m(pod)
	}
	return pod
}

func exited(code int32, reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason},
		}}}
	}
}

// want describes the parts of an Action a row checks.
type want struct {
	kind         Kind
	phase        cnatv1alpha1.Phase
	result       cnatv1alpha1.Result
	reason       string
	exitCode     *int32
	requeueAfter time.Duration
	again        bool
	terminal     bool
	condition    string // a condition that must be True
	// startTime is StartPod's pod's start time or, if RUNNING is written, status.startTime.
	startTime time.Time
}

func TestDecide(t *testing.T) {
	pending, running, done := newAt(pendingStatus), newAt(runningStatus), newAt(doneStatus)
	withTTL := newAt(doneStatus, func(a *cnatv1alpha1.At) { a.Spec.TTLSecondsAfterFinished = ptr.To[int32](30) })
	runningWithTTL := newAt(runningStatus, func(a *cnatv1alpha1.At) { a.Spec.TTLSecondsAfterFinished = ptr.To[int32](30) })
	deadline := func(a *cnatv1alpha1.At) { a.Spec.StartingDeadlineSeconds = ptr.To[int64](10) }
	retimed := newAt(pendingStatus, func(a *cnatv1alpha1.At) {
		a.Generation = 2
		a.Spec.Schedule = schedule.Add(time.Hour).Format(time.RFC3339)
	})
	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: PodName(pending), Namespace: "ns"}}

	tests := []struct {
		name   string
		at     *cnatv1alpha1.At
		pod    *corev1.Pod
		now    time.Time
		reject error
		// podCreated: this manager created the pod and has not recorded RUNNING.
		podCreated bool
		want       want
	}{
		{name: "new, schedule in the future: PENDING once, requeue for exactly the time left",
			at: newAt(), now: schedule.Add(-90 * time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhasePending, reason: cnatv1alpha1.ReasonScheduled, requeueAfter: 90 * time.Second}},
		{name: "pending and recorded, woken early: wait for the remainder, no write",
			at: pending, now: schedule.Add(-3 * time.Millisecond),
			want: want{kind: Wait, phase: cnatv1alpha1.PhasePending, requeueAfter: 3 * time.Millisecond}},
		{name: "schedule reached: create the pod, stamped with now; RUNNING waits until the pod is seen",
			at: pending, now: schedule,
			want: want{kind: StartPod, phase: cnatv1alpha1.PhasePending, startTime: schedule}},
		{name: "schedule already past at creation: run at once",
			at: newAt(), now: schedule.Add(time.Hour),
			want: want{kind: StartPod, startTime: schedule.Add(time.Hour)}},
		{name: "past but within startingDeadlineSeconds: run",
			at: newAt(deadline), now: schedule.Add(10 * time.Second),
			want: want{kind: StartPod, startTime: schedule.Add(10 * time.Second)}},
		{name: "pod seen (just created, or before a restart): RUNNING, started when the pod was created",
			at: pending, pod: ownPod(pending, corev1.PodPending), now: schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: cnatv1alpha1.ReasonPodCreated,
				condition: cnatv1alpha1.ConditionStarted, startTime: podStart}},
		{name: "pod seen of an At that was never PENDING: RUNNING records the schedule too",
			at: newAt(), pod: ownPod(newAt(), corev1.PodRunning), now: schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: cnatv1alpha1.ReasonPodCreated, startTime: podStart}},
		{name: "pod without its start-time annotation: started at its creationTimestamp",
			at: pending, pod: ownPod(pending, corev1.PodPending, func(p *corev1.Pod) {
				delete(p.Annotations, StartTimeAnnotation)
				p.CreationTimestamp = metav1.NewTime(schedule.Add(time.Second))
			}),
			now:  schedule.Add(2 * time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseRunning, startTime: schedule.Add(time.Second)}},
		{name: "pod with a garbled start-time annotation: started at its creationTimestamp",
			at: pending, pod: ownPod(pending, corev1.PodPending, func(p *corev1.Pod) {
				p.Annotations[StartTimeAnnotation] = "yesterday"
				p.CreationTimestamp = metav1.NewTime(schedule.Add(time.Second))
			}),
			now:  schedule.Add(2 * time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseRunning, startTime: schedule.Add(time.Second)}},
		{name: "past startingDeadlineSeconds: Missed, no pod",
			at: newAt(deadline), now: schedule.Add(10*time.Second + time.Millisecond),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultMissed,
				reason: cnatv1alpha1.ReasonMissedStartingDeadline, condition: cnatv1alpha1.ConditionFailed}},
		{name: "schedule edited while PENDING: retimed to the new schedule",
			at: retimed, now: schedule.Add(-time.Minute),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhasePending, requeueAfter: time.Hour + time.Minute}},
		{name: "running pod: nothing to do until it ends",
			at: running, pod: ownPod(running, corev1.PodRunning), now: schedule.Add(time.Second),
			want: want{kind: Wait, phase: cnatv1alpha1.PhaseRunning}},
		{name: "pod Succeeded: DONE Succeeded, exit code 0",
			at: running, pod: ownPod(running, corev1.PodSucceeded, exited(0, "Completed")), now: schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded,
				reason: cnatv1alpha1.ReasonSucceeded, exitCode: ptr.To[int32](0), condition: cnatv1alpha1.ConditionComplete}},
		{name: "pod Failed with a non-zero exit: DONE Failed with the exit code",
			at: running, pod: ownPod(running, corev1.PodFailed, exited(3, "Error")), now: schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: cnatv1alpha1.ReasonPodFailed, exitCode: ptr.To[int32](3), condition: cnatv1alpha1.ConditionFailed}},
		{name: "pod OOM-killed: the container's reason",
			at: running, pod: ownPod(running, corev1.PodFailed, exited(137, "OOMKilled")), now: schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: "OOMKilled", exitCode: ptr.To[int32](137)}},
		{name: "pod past activeDeadlineSeconds: the pod's reason",
			at: running, pod: ownPod(running, corev1.PodFailed, func(p *corev1.Pod) { p.Status.Reason = "DeadlineExceeded" }),
			now:  schedule.Add(time.Minute),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed, reason: "DeadlineExceeded"}},
		{name: "owned pod deleted before it finished: Failed PodDeleted, never a second run",
			at: running, now: schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed, reason: cnatv1alpha1.ReasonPodDeleted}},
		{name: "owned pod being deleted: Failed PodDeleted",
			at: running, pod: ownPod(running, corev1.PodRunning, func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: schedule} }),
			now:  schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed, reason: cnatv1alpha1.ReasonPodDeleted}},
		{name: "pod succeeded before RUNNING was recorded: RUNNING first, then decide again for DONE",
			at: pending, pod: ownPod(pending, corev1.PodSucceeded, exited(0, "Completed")), now: schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: cnatv1alpha1.ReasonPodCreated,
				condition: cnatv1alpha1.ConditionStarted, startTime: podStart, again: true}},
		{name: "pod failed before RUNNING was recorded: RUNNING first, then decide again",
			at: pending, pod: ownPod(pending, corev1.PodFailed, exited(1, "Error")), now: schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: cnatv1alpha1.ReasonPodCreated, startTime: podStart, again: true}},
		{name: "pod being deleted before RUNNING was recorded: RUNNING first, then decide again",
			at: pending, pod: ownPod(pending, corev1.PodRunning, func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: schedule} }),
			now:  schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: cnatv1alpha1.ReasonPodCreated, startTime: podStart, again: true}},
		{name: "pod created here and gone before RUNNING was recorded: Failed PodDeleted, never a second run",
			at: pending, podCreated: true, now: schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed, reason: cnatv1alpha1.ReasonPodDeleted}},
		{name: "own pod seen before the schedule (only this controller creates it): RUNNING",
			at: pending, pod: ownPod(pending, corev1.PodPending), now: schedule.Add(-time.Minute),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseRunning, startTime: podStart}},
		{name: "a pod with that name not owned by this At: Failed, reason names the conflict",
			at: pending, pod: foreign, now: schedule,
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed, reason: cnatv1alpha1.ReasonPodConflict}},
		{name: "pod refused by the API server as invalid: Failed PodRejected",
			at: pending, now: schedule, reject: errors.New("spec.containers[0].image: Invalid value"),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed, reason: cnatv1alpha1.ReasonPodRejected}},
		{name: "schedule that does not parse (CRD without validation): terminal InvalidSpec",
			at: newAt(func(a *cnatv1alpha1.At) { a.Spec.Schedule = "2026-02-30T10:00:00Z" }), now: schedule,
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: cnatv1alpha1.ReasonInvalidSpec, terminal: true}},
		{name: "empty command: terminal InvalidSpec",
			at: newAt(func(a *cnatv1alpha1.At) { a.Spec.Command = "  " }), now: schedule,
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: cnatv1alpha1.ReasonInvalidSpec, terminal: true}},
		{name: "finishing with ttlSecondsAfterFinished: requeue for the TTL",
			at: runningWithTTL, pod: ownPod(runningWithTTL, corev1.PodSucceeded, exited(0, "")), now: schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded,
				exitCode: ptr.To[int32](0), requeueAfter: 30 * time.Second}},
		{name: "finishing with ttlSecondsAfterFinished 0: decide again at once, to delete",
			at:  newAt(runningStatus, func(a *cnatv1alpha1.At) { a.Spec.TTLSecondsAfterFinished = ptr.To[int32](0) }),
			pod: ownPod(running, corev1.PodSucceeded, exited(0, "")), now: schedule.Add(time.Second),
			want: want{kind: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded,
				exitCode: ptr.To[int32](0), again: true}},
		{name: "DONE without TTL: kept, nothing to do",
			at: done, now: schedule.Add(24 * time.Hour),
			want: want{kind: Wait, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded}},
		{name: "DONE, TTL not over: wait for the rest",
			at: withTTL, now: schedule.Add(time.Minute + 10*time.Second),
			want: want{kind: Wait, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded, requeueAfter: 20 * time.Second}},
		{name: "DONE, TTL over: delete the At",
			at: withTTL, now: schedule.Add(time.Minute + 30*time.Second),
			want: want{kind: DeleteAt, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.at.DeepCopy()
			action := Decide(Input{At: tc.at, Pod: tc.pod, Now: tc.now, DefaultImage: "img", PodRejected: tc.reject, PodCreated: tc.podCreated})
			if tc.at.Status.Phase != before.Status.Phase || len(tc.at.Status.Conditions) != len(before.Status.Conditions) {
				t.Fatal("Decide modified its input")
			}
			checkAction(t, tc.at, action, tc.want)
		})
	}
}

func checkAction(t *testing.T, at *cnatv1alpha1.At, action Action, w want) {
	t.Helper()
	if action.Kind != w.kind {
		t.Fatalf("kind = %s, want %s", action.Kind, w.kind)
	}
	if action.RequeueAfter != w.requeueAfter || action.Again != w.again {
		t.Errorf("requeueAfter = %s, again = %v; want %s, %v", action.RequeueAfter, action.Again, w.requeueAfter, w.again)
	}
	if (action.Terminal != nil) != w.terminal {
		t.Errorf("terminal = %v, want %v", action.Terminal, w.terminal)
	}
	status := &at.Status
	if action.Status != nil {
		status = action.Status
		if status.ObservedGeneration != at.Generation {
			t.Errorf("observedGeneration = %d, want %d", status.ObservedGeneration, at.Generation)
		}
		if action.Event == nil {
			t.Error("a status transition without an Event")
		}
	}
	if status.Phase != w.phase || status.Result != w.result {
		t.Errorf("phase/result = %s/%s, want %s/%s", status.Phase, status.Result, w.phase, w.result)
	}
	if w.reason != "" && status.Reason != w.reason {
		t.Errorf("reason = %q (%s), want %q", status.Reason, status.Message, w.reason)
	}
	if !ptr.Equal(status.ExitCode, w.exitCode) {
		t.Errorf("exitCode = %v, want %v", ptr.Deref(status.ExitCode, -1), ptr.Deref(w.exitCode, -1))
	}
	if w.condition != "" && !meta.IsStatusConditionTrue(status.Conditions, w.condition) {
		t.Errorf("condition %s not True in %+v", w.condition, status.Conditions)
	}
	switch {
	case action.Kind == StartPod:
		checkStartPod(t, at, action, w)
	case action.Pod != nil:
		t.Error("only StartPod may carry a pod")
	case action.Status != nil && status.Phase == cnatv1alpha1.PhaseRunning:
		if status.PodName != PodName(at) || status.ScheduledTime == nil || !status.ScheduledTime.Time.Equal(schedule) {
			t.Errorf("RUNNING must name the pod and the schedule: %+v", status)
		}
		if status.StartTime == nil || !status.StartTime.Time.Equal(w.startTime) {
			t.Errorf("startTime = %v, want %s", status.StartTime, w.startTime)
		}
	}
	if status.Phase == cnatv1alpha1.PhaseDone && action.Kind == WriteStatus && status.CompletionTime == nil {
		t.Error("DONE without completionTime")
	}
}

func checkStartPod(t *testing.T, at *cnatv1alpha1.At, action Action, w want) {
	t.Helper()
	if action.Pod == nil || action.Pod.Name != PodName(at) || action.Status != nil || action.Event != nil {
		t.Fatalf("StartPod must carry the At's pod and nothing to write: pod=%v status=%v event=%v", action.Pod, action.Status, action.Event)
	}
	if !action.Schedule.Equal(schedule) {
		t.Errorf("schedule = %s, want %s", action.Schedule, schedule)
	}
	if started, ok := PodStartTime(action.Pod); !ok || !started.Equal(w.startTime) {
		t.Errorf("pod start time = %s (%v), want %s", started, ok, w.startTime)
	}
}

func TestDecideStartsNeverBeforeTheSchedule(t *testing.T) {
	at := newAt(pendingStatus)
	for _, early := range []time.Duration{time.Hour, time.Second, time.Microsecond, time.Nanosecond} {
		if action := Decide(Input{At: at, Now: schedule.Add(-early)}); action.Kind != Wait || action.RequeueAfter != early {
			t.Errorf("%s early: %s after %s, want Wait after %s", early, action.Kind, action.RequeueAfter, early)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	for _, ok := range []string{"2026-02-10T20:35:00Z", "2026-02-10T21:35:00+01:00", "2026-02-10T20:35:00.123456789Z", "2024-02-29T00:00:00-07:30"} {
		if _, err := ParseSchedule(ok); err != nil {
			t.Errorf("ParseSchedule(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"2026-02-30T10:00:00Z", "2026-02-10T20:35:00", "2026-02-10", "garbage", "", "2025-02-29T00:00:00Z", "2026-02-10 20:35:00Z"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted an invalid schedule", bad)
		}
	}
}
