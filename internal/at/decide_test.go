package at

import (
	"errors"
	"math"
	"strings"
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

func waiting(reason, message string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message},
		}}}
	}
}

func started(p *corev1.Pod) {
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{
		Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(podStart)},
	}}}
}

func unschedulable(p *corev1.Pod) {
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}}
}

func beingDeleted(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: schedule} }

func released(p *corev1.Pod) { p.Finalizers = nil }

func setHeld(at *cnatv1alpha1.At, reason string, since time.Time) {
	meta.SetStatusCondition(&at.Status.Conditions, metav1.Condition{Type: cnatv1alpha1.ConditionHeld, Status: metav1.ConditionTrue,
		Reason: reason, Message: "the API server refused pod x: exceeded quota", LastTransitionTime: metav1.NewTime(since)})
}

// want describes the parts of an Action a row checks.
type want struct {
	typ          ActionType
	phase        cnatv1alpha1.Phase
	result       cnatv1alpha1.Result
	reason       string
	exitCode     *int32
	requeueAfter time.Duration
	again        bool
	terminal     bool
	condition    string // a condition that must be True
	notCondition string // a condition that must be False
	eventType    string // the Event's type, when the row cares
	message      string // a part of status.message
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
	deleting := newAt(pendingStatus, func(a *cnatv1alpha1.At) { a.DeletionTimestamp = &metav1.Time{Time: schedule} })
	heldImage := newAt(runningStatus, func(a *cnatv1alpha1.At) { setHeld(a, "ErrImagePull", schedule) })
	heldCreateStatus := func(a *cnatv1alpha1.At) { pendingStatus(a); setHeld(a, cnatv1alpha1.ReasonFailedCreate, schedule) }
	heldCreate := newAt(heldCreateStatus)
	active := func(a *cnatv1alpha1.At) { a.Spec.ActiveDeadlineSeconds = ptr.To[int64](60) }
	runningDeadline, runningActive := newAt(runningStatus, deadline), newAt(runningStatus, active)
	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: PodName(pending), Namespace: "ns"}}
	suspend := func(a *cnatv1alpha1.At) { a.Spec.Suspend = ptr.To(true) }
	suspendedAt := newAt(pendingStatus, suspend, func(a *cnatv1alpha1.At) {
		meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{Type: cnatv1alpha1.ConditionSuspended,
			Status: metav1.ConditionTrue, Reason: cnatv1alpha1.ReasonSuspended})
	})
	// resumedAt is suspendedAt with spec.suspend cleared: a new generation.
	resumedAt := func(mutate ...func(*cnatv1alpha1.At)) *cnatv1alpha1.At {
		a := suspendedAt.DeepCopy()
		a.Spec.Suspend, a.Generation = ptr.To(false), 2
		for _, m := range mutate {
			m(a)
		}
		return a
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		at      *cnatv1alpha1.At
		pod     *corev1.Pod
		now     time.Time
		reject  error
		refused error
		want    want
	}{
		{name: "new, schedule in the future: PENDING once, requeue for exactly the time left",
			at: newAt(), now: schedule.Add(-90 * time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhasePending, reason: cnatv1alpha1.ReasonScheduled, requeueAfter: 90 * time.Second}},
		{name: "pending and recorded, woken early: wait for the remainder, no write",
			at: pending, now: schedule.Add(-3 * time.Millisecond),
			want: want{typ: Wait, phase: cnatv1alpha1.PhasePending, requeueAfter: 3 * time.Millisecond}},
		{name: "schedule reached: create the pod, stamped with now; RUNNING waits until the pod is seen",
			at: pending, now: schedule,
			want: want{typ: StartPod, phase: cnatv1alpha1.PhasePending, startTime: schedule}},
		{name: "schedule already past at creation: run at once",
			at: newAt(), now: schedule.Add(time.Hour),
			want: want{typ: StartPod, startTime: schedule.Add(time.Hour)}},
		{name: "past but within startingDeadlineSeconds: run",
			at: newAt(deadline), now: schedule.Add(10 * time.Second),
			want: want{typ: StartPod, startTime: schedule.Add(10 * time.Second)}},
		{name: "pod seen (just created, or before a restart): RUNNING, started when the pod was created",
			at: pending, pod: ownPod(pending, corev1.PodPending), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: cnatv1alpha1.ReasonPodCreated,
				condition: cnatv1alpha1.ConditionStarted, startTime: podStart, again: true}},
		{name: "pod seen of an At that was never PENDING: RUNNING records the schedule too",
			at: newAt(), pod: ownPod(newAt(), corev1.PodRunning), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: cnatv1alpha1.ReasonPodCreated, startTime: podStart, again: true}},
		{name: "pod without its start-time annotation: started at its creationTimestamp",
			at: pending, pod: ownPod(pending, corev1.PodPending, func(p *corev1.Pod) {
				delete(p.Annotations, StartTimeAnnotation)
				p.CreationTimestamp = metav1.NewTime(schedule.Add(time.Second))
			}),
			now:  schedule.Add(2 * time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, startTime: schedule.Add(time.Second), again: true}},
		{name: "pod with a garbled start-time annotation: started at its creationTimestamp",
			at: pending, pod: ownPod(pending, corev1.PodPending, func(p *corev1.Pod) {
				p.Annotations[StartTimeAnnotation] = "yesterday"
				p.CreationTimestamp = metav1.NewTime(schedule.Add(time.Second))
			}),
			now:  schedule.Add(2 * time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, startTime: schedule.Add(time.Second), again: true}},
		{name: "past startingDeadlineSeconds: Missed, no pod",
			at: newAt(deadline), now: schedule.Add(10*time.Second + time.Millisecond),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultMissed,
				reason: cnatv1alpha1.ReasonMissedStartingDeadline, condition: cnatv1alpha1.ConditionFailed, again: true}},
		{name: "schedule edited while PENDING: retimed to the new schedule",
			at: retimed, now: schedule.Add(-time.Minute),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhasePending, requeueAfter: time.Hour + time.Minute}},
		{name: "running pod: nothing to do until it ends",
			at: running, pod: ownPod(running, corev1.PodRunning), now: schedule.Add(time.Second),
			want: want{typ: Wait, phase: cnatv1alpha1.PhaseRunning}},
		{name: "pod Succeeded: DONE Succeeded, exit code 0",
			at: running, pod: ownPod(running, corev1.PodSucceeded, exited(0, "Completed")), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded,
				reason: cnatv1alpha1.ReasonSucceeded, exitCode: ptr.To[int32](0), condition: cnatv1alpha1.ConditionComplete, again: true}},
		{name: "pod Failed with a non-zero exit: DONE Failed with the exit code",
			at: running, pod: ownPod(running, corev1.PodFailed, exited(3, "Error")), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: cnatv1alpha1.ReasonPodFailed, exitCode: ptr.To[int32](3), condition: cnatv1alpha1.ConditionFailed, again: true}},
		{name: "pod OOM-killed: the container's reason",
			at: running, pod: ownPod(running, corev1.PodFailed, exited(137, "OOMKilled")), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: "OOMKilled", exitCode: ptr.To[int32](137), again: true}},
		{name: "pod past activeDeadlineSeconds: the pod's reason",
			at: running, pod: ownPod(running, corev1.PodFailed, func(p *corev1.Pod) { p.Status.Reason = "DeadlineExceeded" }),
			now:  schedule.Add(time.Minute),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed, reason: "DeadlineExceeded", again: true}},
		{name: "owned pod deleted before it finished: Failed PodDeleted, never a second run",
			at: running, now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed, reason: cnatv1alpha1.ReasonPodDeleted, again: true}},
		{name: "owned pod being deleted: Failed PodDeleted",
			at: running, pod: ownPod(running, corev1.PodRunning, func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: schedule} }),
			now:  schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed, reason: cnatv1alpha1.ReasonPodDeleted, again: true}},
		{name: "pod succeeded before RUNNING was recorded: RUNNING first, then decide again for DONE",
			at: pending, pod: ownPod(pending, corev1.PodSucceeded, exited(0, "Completed")), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: cnatv1alpha1.ReasonPodCreated,
				condition: cnatv1alpha1.ConditionStarted, startTime: podStart, again: true}},
		{name: "pod failed before RUNNING was recorded: RUNNING first, then decide again",
			at: pending, pod: ownPod(pending, corev1.PodFailed, exited(1, "Error")), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: cnatv1alpha1.ReasonPodCreated, startTime: podStart, again: true}},
		{name: "pod being deleted before RUNNING was recorded: RUNNING first, then decide again",
			at: pending, pod: ownPod(pending, corev1.PodRunning, func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: schedule} }),
			now:  schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: cnatv1alpha1.ReasonPodCreated, startTime: podStart, again: true}},
		{name: "own pod seen before the schedule (only this controller creates it): RUNNING",
			at: pending, pod: ownPod(pending, corev1.PodPending), now: schedule.Add(-time.Minute),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, startTime: podStart, again: true}},
		{name: "a pod with that name not owned by this At: Failed, reason names the conflict",
			at: pending, pod: foreign, now: schedule,
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed, reason: cnatv1alpha1.ReasonPodConflict, again: true}},
		{name: "pod refused by the API server as invalid: Failed PodRejected",
			at: pending, now: schedule, reject: errors.New("spec.containers[0].image: Invalid value"),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed, reason: cnatv1alpha1.ReasonPodRejected, again: true}},
		{name: "suspended before its schedule: PENDING Suspended with an Event, and no timer",
			at: newAt(suspend), now: schedule.Add(-time.Minute),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhasePending, reason: cnatv1alpha1.ReasonSuspended,
				condition: cnatv1alpha1.ConditionSuspended, eventType: corev1.EventTypeNormal, message: "spec.suspend"}},
		{name: "suspended and recorded, schedule reached: no pod, no write",
			at: suspendedAt, now: schedule.Add(time.Minute),
			want: want{typ: Wait, phase: cnatv1alpha1.PhasePending}},
		{name: "suspended with its schedule and starting deadline past: still only suspended, no pod, no Missed",
			at: newAt(pendingStatus, suspend, deadline), now: schedule.Add(time.Hour),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhasePending, reason: cnatv1alpha1.ReasonSuspended,
				condition: cnatv1alpha1.ConditionSuspended, message: "has passed"}},
		{name: "suspend cleared after the schedule: run at once",
			at: resumedAt(), now: schedule.Add(time.Minute),
			want: want{typ: StartPod, phase: cnatv1alpha1.PhasePending, startTime: schedule.Add(time.Minute)}},
		{name: "suspend cleared before the schedule: PENDING Scheduled, Suspended False",
			at: resumedAt(), now: schedule.Add(-time.Minute),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhasePending, reason: cnatv1alpha1.ReasonScheduled,
				notCondition: cnatv1alpha1.ConditionSuspended, requeueAfter: time.Minute}},
		{name: "suspend cleared past startingDeadlineSeconds: Missed, Suspended False",
			at: resumedAt(deadline), now: schedule.Add(time.Minute),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultMissed,
				reason: cnatv1alpha1.ReasonMissedStartingDeadline, notCondition: cnatv1alpha1.ConditionSuspended, again: true}},
		{name: "suspend set once the pod exists: the run goes on",
			at: newAt(runningStatus, suspend), pod: ownPod(running, corev1.PodRunning, started), now: schedule.Add(time.Second),
			want: want{typ: Wait, phase: cnatv1alpha1.PhaseRunning}},
		{name: "pod seen after a resume: RUNNING, Suspended False",
			at: resumedAt(), pod: ownPod(pending, corev1.PodPending), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, notCondition: cnatv1alpha1.ConditionSuspended,
				startTime: podStart, again: true}},
		{name: "time zone: the local schedule resolved in it; status.scheduledTime is the instant",
			at: newAt(func(a *cnatv1alpha1.At) {
				a.Spec.TimeZone, a.Spec.Schedule = "Asia/Kolkata", schedule.In(kolkata).Format("2006-01-02T15:04:05")
			}), now: schedule.Add(-time.Minute),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhasePending, reason: cnatv1alpha1.ReasonScheduled,
				requeueAfter: time.Minute, message: "+05:30"}},
		{name: "time zone the manager does not know (CRD without validation): terminal InvalidSpec",
			at: newAt(func(a *cnatv1alpha1.At) {
				a.Spec.TimeZone, a.Spec.Schedule = "Mars/Olympus_Mons", "2026-02-10T20:35:00"
			}), now: schedule,
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: cnatv1alpha1.ReasonInvalidSpec, terminal: true, again: true, message: "spec.timeZone"}},
		{name: "time zone with an offset in the schedule (CRD without validation): terminal InvalidSpec",
			at: newAt(func(a *cnatv1alpha1.At) { a.Spec.TimeZone = "Europe/Berlin" }), now: schedule,
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: cnatv1alpha1.ReasonInvalidSpec, terminal: true, again: true, message: "spec.schedule"}},
		{name: "schedule that does not parse (CRD without validation): terminal InvalidSpec",
			at: newAt(func(a *cnatv1alpha1.At) { a.Spec.Schedule = "2026-02-30T10:00:00Z" }), now: schedule,
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: cnatv1alpha1.ReasonInvalidSpec, terminal: true, again: true}},
		{name: "empty command: terminal InvalidSpec",
			at: newAt(func(a *cnatv1alpha1.At) { a.Spec.Command = "  " }), now: schedule,
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: cnatv1alpha1.ReasonInvalidSpec, terminal: true, again: true}},
		{name: "finishing with ttlSecondsAfterFinished: decide again, to release the pod and time the TTL",
			at: runningWithTTL, pod: ownPod(runningWithTTL, corev1.PodSucceeded, exited(0, "")), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded,
				exitCode: ptr.To[int32](0), again: true}},
		{name: "finishing with ttlSecondsAfterFinished 0: decide again at once, to delete",
			at:  newAt(runningStatus, func(a *cnatv1alpha1.At) { a.Spec.TTLSecondsAfterFinished = ptr.To[int32](0) }),
			pod: ownPod(running, corev1.PodSucceeded, exited(0, "")), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded,
				exitCode: ptr.To[int32](0), again: true}},
		{name: "DONE without TTL: kept, nothing to do",
			at: done, now: schedule.Add(24 * time.Hour),
			want: want{typ: Wait, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded}},
		{name: "DONE, TTL not over: wait for the rest",
			at: withTTL, now: schedule.Add(time.Minute + 10*time.Second),
			want: want{typ: Wait, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded, requeueAfter: 20 * time.Second}},
		{name: "DONE, TTL over: delete the At",
			at: withTTL, now: schedule.Add(time.Minute + 30*time.Second),
			want: want{typ: DeleteAt, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded}},
		{name: "DONE and its pod still held: release the pod's finalizer, then decide again",
			at: done, pod: ownPod(done, corev1.PodSucceeded), now: schedule.Add(time.Minute),
			want: want{typ: ReleasePod, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded, again: true}},
		{name: "DONE and its pod released: nothing to do",
			at: done, pod: ownPod(done, corev1.PodSucceeded, released), now: schedule.Add(time.Minute),
			want: want{typ: Wait, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded}},
		{name: "At being deleted: release its pod, run nothing",
			at: deleting, pod: ownPod(deleting, corev1.PodRunning), now: schedule,
			want: want{typ: ReleasePod, phase: cnatv1alpha1.PhasePending}},
		{name: "At being deleted, no pod: nothing to do, even when due",
			at: deleting, now: schedule.Add(time.Hour),
			want: want{typ: Wait, phase: cnatv1alpha1.PhasePending}},
		{name: "own pod stripped of the operator's labels: put them back",
			at: running, pod: ownPod(running, corev1.PodRunning, func(p *corev1.Pod) { delete(p.Labels, ManagedByLabel) }),
			now:  schedule.Add(time.Second),
			want: want{typ: RelabelPod, phase: cnatv1alpha1.PhaseRunning}},
		{name: "pod whose image cannot be pulled: Held ErrImagePull, with a Warning",
			at: running, pod: ownPod(running, corev1.PodPending, waiting("ErrImagePull", "not found")), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: "ErrImagePull", condition: cnatv1alpha1.ConditionHeld,
				eventType: corev1.EventTypeWarning, message: "not found"}},
		{name: "already Held ErrImagePull, now ImagePullBackOff: the same hold, no second Event",
			at: heldImage, pod: ownPod(heldImage, corev1.PodPending, waiting("ImagePullBackOff", "Back-off pulling image")), now: schedule.Add(time.Minute),
			want: want{typ: Wait, phase: cnatv1alpha1.PhaseRunning}},
		{name: "unschedulable pod: Held Unschedulable with the scheduler's message",
			at: running, pod: ownPod(running, corev1.PodPending, unschedulable), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: corev1.PodReasonUnschedulable,
				condition: cnatv1alpha1.ConditionHeld, message: "0/1 nodes are available"}},
		{name: "held pod started after all: Held False",
			at: heldImage, pod: ownPod(heldImage, corev1.PodRunning, started), now: schedule.Add(time.Minute),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseRunning, reason: cnatv1alpha1.ReasonNotHeld,
				notCondition: cnatv1alpha1.ConditionHeld, eventType: corev1.EventTypeNormal}},
		{name: "held pod succeeded: DONE, Held False",
			at: heldImage, pod: ownPod(heldImage, corev1.PodSucceeded, exited(0, "Completed")), now: schedule.Add(time.Minute),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultSucceeded,
				exitCode: ptr.To[int32](0), notCondition: cnatv1alpha1.ConditionHeld, again: true}},
		{name: "pod not started, startingDeadlineSeconds ahead: wake up at the deadline",
			at: runningDeadline, pod: ownPod(runningDeadline, corev1.PodPending), now: schedule.Add(4 * time.Second),
			want: want{typ: Wait, phase: cnatv1alpha1.PhaseRunning, requeueAfter: 6 * time.Second}},
		{name: "pod not started by startingDeadlineSeconds: delete it",
			at: runningDeadline, pod: ownPod(runningDeadline, corev1.PodPending), now: schedule.Add(10 * time.Second),
			want: want{typ: DeletePod, phase: cnatv1alpha1.PhaseRunning}},
		{name: "pod not started by startingDeadlineSeconds, being deleted: Missed, naming what held it",
			at: runningDeadline, pod: ownPod(runningDeadline, corev1.PodPending, waiting("ErrImagePull", "not found"), beingDeleted),
			now: schedule.Add(11 * time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultMissed,
				reason: cnatv1alpha1.ReasonMissedStartingDeadline, message: "ErrImagePull: not found", again: true}},
		{name: "pod started before startingDeadlineSeconds: the deadline no longer applies",
			at: runningDeadline, pod: ownPod(runningDeadline, corev1.PodRunning, started), now: schedule.Add(time.Hour),
			want: want{typ: Wait, phase: cnatv1alpha1.PhaseRunning}},
		{name: "activeDeadlineSeconds ahead: wake up when it is over, counted from the pod's creation",
			at: runningActive, pod: ownPod(runningActive, corev1.PodRunning, started), now: podStart.Add(20 * time.Second),
			want: want{typ: Wait, phase: cnatv1alpha1.PhaseRunning, requeueAfter: 40 * time.Second}},
		{name: "the nearer of the two deadlines wins",
			at: newAt(runningStatus, deadline, active), pod: ownPod(running, corev1.PodPending), now: podStart,
			want: want{typ: Wait, phase: cnatv1alpha1.PhaseRunning, requeueAfter: schedule.Add(10 * time.Second).Sub(podStart)}},
		{name: "activeDeadlineSeconds over: delete the pod",
			at: runningActive, pod: ownPod(runningActive, corev1.PodRunning, started), now: podStart.Add(time.Minute),
			want: want{typ: DeletePod, phase: cnatv1alpha1.PhaseRunning}},
		{name: "activeDeadlineSeconds over, pod being deleted: Failed DeadlineExceeded",
			at: runningActive, pod: ownPod(runningActive, corev1.PodFailed, started, beingDeleted), now: podStart.Add(time.Minute),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: cnatv1alpha1.ReasonDeadlineExceeded, again: true}},
		{name: "pod killed by its deletion (Failed and being deleted): PodDeleted, not the exit code's failure",
			at: running, pod: ownPod(running, corev1.PodFailed, exited(137, "Error"), beingDeleted), now: schedule.Add(time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultFailed,
				reason: cnatv1alpha1.ReasonPodDeleted, exitCode: ptr.To[int32](137), again: true}},
		{name: "create refused: PENDING, Held FailedCreate with the API server's message and a Warning, retry in 1s",
			at: pending, now: schedule, refused: errors.New(`pods "demo" is forbidden: exceeded quota`),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhasePending, reason: cnatv1alpha1.ReasonFailedCreate,
				condition: cnatv1alpha1.ConditionHeld, eventType: corev1.EventTypeWarning, message: "exceeded quota", requeueAfter: time.Second}},
		{name: "create refused again, held for 8s: no write, retry after 8s more (the wait doubles)",
			at: heldCreate, now: schedule.Add(8 * time.Second), refused: errors.New("exceeded quota"),
			want: want{typ: Wait, phase: cnatv1alpha1.PhasePending, requeueAfter: 8 * time.Second}},
		{name: "create refused for an hour: the retry is capped",
			at: heldCreate, now: schedule.Add(time.Hour), refused: errors.New("exceeded quota"),
			want: want{typ: Wait, phase: cnatv1alpha1.PhasePending, requeueAfter: createRetryMax}},
		{name: "create refused near startingDeadlineSeconds: retry just after the deadline",
			at: newAt(heldCreateStatus, deadline), now: schedule.Add(9 * time.Second), refused: errors.New("exceeded quota"),
			want: want{typ: Wait, phase: cnatv1alpha1.PhasePending, requeueAfter: time.Second + time.Millisecond}},
		{name: "past startingDeadlineSeconds while the create was refused: Missed, naming the refusal",
			at: newAt(heldCreateStatus, deadline), now: schedule.Add(11 * time.Second),
			want: want{typ: WriteStatus, phase: cnatv1alpha1.PhaseDone, result: cnatv1alpha1.ResultMissed,
				reason: cnatv1alpha1.ReasonMissedStartingDeadline, message: "held by FailedCreate: the API server refused pod",
				notCondition: cnatv1alpha1.ConditionHeld, again: true}},
		{name: "startingDeadlineSeconds beyond what a duration holds: never missed, no overflow",
			at: newAt(func(a *cnatv1alpha1.At) { a.Spec.StartingDeadlineSeconds = ptr.To[int64](math.MaxInt64) }), now: schedule.Add(time.Hour),
			want: want{typ: StartPod, startTime: schedule.Add(time.Hour)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.at.DeepCopy()
			action := Decide(Input{At: tc.at, Pod: tc.pod, Now: tc.now, DefaultImage: "img", PodRejected: tc.reject, CreateRefused: tc.refused})
			if tc.at.Status.Phase != before.Status.Phase || len(tc.at.Status.Conditions) != len(before.Status.Conditions) {
				t.Fatal("Decide modified its input")
			}
			checkAction(t, tc.at, action, tc.want)
		})
	}
}

func checkAction(t *testing.T, at *cnatv1alpha1.At, action Action, w want) {
	t.Helper()
	if action.Type != w.typ {
		t.Fatalf("action = %s, want %s", action.Type, w.typ)
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
	if w.notCondition != "" && !meta.IsStatusConditionFalse(status.Conditions, w.notCondition) {
		t.Errorf("condition %s not False in %+v", w.notCondition, status.Conditions)
	}
	if w.eventType != "" && (action.Event == nil || action.Event.Type != w.eventType) {
		t.Errorf("event = %+v, want one of type %s", action.Event, w.eventType)
	}
	if !strings.Contains(status.Message, w.message) {
		t.Errorf("message = %q, want it to contain %q", status.Message, w.message)
	}
	switch {
	case action.Type == StartPod:
		checkStartPod(t, at, action, w)
	case action.Pod != nil && action.Type != DeletePod && action.Type != ReleasePod && action.Type != RelabelPod:
		t.Errorf("%s carries a pod", action.Type)
	case action.Status != nil && status.Phase == cnatv1alpha1.PhaseRunning && status.Reason == cnatv1alpha1.ReasonPodCreated:
		if status.PodName != PodName(at) || status.ScheduledTime == nil || !status.ScheduledTime.Time.Equal(schedule) {
			t.Errorf("RUNNING must name the pod and the schedule: %+v", status)
		}
		if status.StartTime == nil || !status.StartTime.Time.Equal(w.startTime) {
			t.Errorf("startTime = %v, want %s", status.StartTime, w.startTime)
		}
	}
	if status.Phase == cnatv1alpha1.PhaseDone && action.Type == WriteStatus && status.CompletionTime == nil {
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
		if action := Decide(Input{At: at, Now: schedule.Add(-early)}); action.Type != Wait || action.RequeueAfter != early {
			t.Errorf("%s early: %s after %s, want Wait after %s", early, action.Type, action.RequeueAfter, early)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	for _, ok := range []string{"2026-02-10T20:35:00Z", "2026-02-10T21:35:00+01:00", "2026-02-10T20:35:00.123456789Z", "2024-02-29T00:00:00-07:30", "9999-12-31T22:30:00-01:00", "0001-01-01T01:00:00+01:00"} {
		if _, err := ParseSchedule(ok); err != nil {
			t.Errorf("ParseSchedule(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"9999-12-31T23:30:00-01:00", "0001-01-01T00:30:00+01:00", "2026-02-30T10:00:00Z", "2026-02-10T20:35:00", "2026-02-10", "garbage", "", "2025-02-29T00:00:00Z", "2026-02-10 20:35:00Z"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted an invalid schedule", bad)
		}
	}
}
