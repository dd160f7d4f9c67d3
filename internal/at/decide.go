package at

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// ActionType is what the controller must do.
type ActionType string

const (
	// Wait: nothing to write now; come back after RequeueAfter if it is set.
	Wait ActionType = "Wait"
	// WriteStatus: write Status.
	WriteStatus ActionType = "WriteStatus"
	// StartPod: create Pod, and write nothing else: RUNNING is written when
	// the pod is seen, by a low-priority reconcile, so that the Ats due at one
	// instant create their pods before they spend requests on status.
	StartPod ActionType = "StartPod"
	// DeletePod: Pod is past a deadline the operator enforces; its deletion
	// (held by RunFinalizer) brings the next decision.
	DeletePod ActionType = "DeletePod"
	// ReleasePod: remove RunFinalizer from Pod: the At has recorded how the
	// run ended, or the At is going away.
	ReleasePod ActionType = "ReleasePod"
	// RelabelPod: put the operator's labels back on Pod, so that the manager's
	// label-selected cache follows it again.
	RelabelPod ActionType = "RelabelPod"
	// DeleteAt: the At's time to live after finishing is over.
	DeleteAt ActionType = "DeleteAt"
)

// Timings of the create retries after a refusal: the wait doubles from
// createRetryMin up to createRetryMax, counted from when the refusal was first
// recorded in the At's Held condition, so it survives a manager restart.
const (
	createRetryMin = time.Second
	createRetryMax = 30 * time.Second
)

// Input is everything Decide looks at.
type Input struct {
	At *cnatv1alpha1.At
	// Pod is the pod named PodName(At), whoever owns it; nil when there is none.
	Pod          *corev1.Pod
	Now          time.Time
	DefaultImage string
	// PodRejected is the API server's answer when it refused the pod as
	// invalid: creating it again cannot succeed.
	PodRejected error
	// CreateRefused is the API server's answer when it refused the pod for
	// another reason (a quota, an admission webhook, Pod Security): creating
	// it again may succeed once that changes.
	CreateRefused error
}

// Event is a Kubernetes Event to emit once the action has succeeded.
type Event struct {
	Type   string
	Reason string
	Note   string
}

// Action is the one next step for an At.
type Action struct {
	Type ActionType
	// Pod is the pod StartPod creates, for the instant Schedule; or the pod
	// DeletePod, ReleasePod and RelabelPod change.
	Pod          *corev1.Pod
	Schedule     time.Time
	Status       *cnatv1alpha1.AtStatus
	RequeueAfter time.Duration
	// Again: decide again at once, on the At and pod as this action left them.
	Again bool
	Event *Event
	// Terminal is set when the spec can never run: retrying cannot help.
	Terminal error
}

// Decide is the whole At state machine: PENDING until the schedule, then one
// pod and RUNNING, then DONE with a result; what holds a run and the deadlines
// that end it; and what to do with a DONE At and its pod.
func Decide(in Input) Action {
	at, pod := in.At, in.Pod
	own := pod != nil && metav1.IsControlledBy(pod, at)
	switch {
	case at.DeletionTimestamp != nil:
		// Nothing runs any more; the pod must not outlive its At on our finalizer.
		if own && HasRunFinalizer(pod) {
			return Action{Type: ReleasePod, Pod: pod}
		}
		return Action{Type: Wait}
	case own && !hasRunLabels(pod, at):
		return Action{Type: RelabelPod, Pod: pod}
	case at.Status.Phase == cnatv1alpha1.PhaseDone:
		if own && HasRunFinalizer(pod) {
			return Action{Type: ReleasePod, Pod: pod, Again: true}
		}
		return expire(in)
	}
	schedule, err := validate(at)
	if err != nil {
		action := finish(in, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonInvalidSpec, err.Error(), nil)
		action.Terminal = err
		return action
	}
	if pod != nil && !own {
		return finish(in, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonPodConflict,
			fmt.Sprintf("pod %s already exists and is not controlled by this At; the command was not run", pod.Name), nil)
	}
	switch {
	case in.PodRejected != nil:
		return finish(in, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonPodRejected,
			"the API server refused the pod: "+in.PodRejected.Error(), nil)
	case pod != nil:
		return observe(in, schedule)
	case at.Status.Phase == cnatv1alpha1.PhaseRunning:
		// Only when someone removed RunFinalizer: otherwise the pod would still be here.
		return finish(in, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonPodDeleted,
			fmt.Sprintf("pod %s was deleted before it finished; the command is not run again", PodName(at)), nil)
	case ptr.Deref(at.Spec.Suspend, false):
		return suspended(in, schedule)
	case in.Now.Before(schedule):
		return pending(in, schedule)
	case pastStartingDeadline(at, schedule, in.Now):
		message := fmt.Sprintf("could not start until %s after the schedule, past startingDeadlineSeconds=%d",
			in.Now.Sub(schedule).Round(time.Millisecond), *at.Spec.StartingDeadlineSeconds)
		if held := meta.FindStatusCondition(at.Status.Conditions, cnatv1alpha1.ConditionHeld); held != nil && held.Status == metav1.ConditionTrue {
			message += "; held by " + held.Reason + ": " + held.Message
		}
		return finish(in, cnatv1alpha1.ResultMissed, cnatv1alpha1.ReasonMissedStartingDeadline, message, nil)
	case in.CreateRefused != nil:
		return createRefused(in, schedule)
	default:
		return Action{Type: StartPod, Pod: PodFor(in.At, in.DefaultImage, in.Now), Schedule: schedule}
	}
}

// validate catches what admission should have refused, for clusters where the
// CRD was installed without its validation.
func validate(at *cnatv1alpha1.At) (time.Time, error) {
	schedule, err := Schedule(&at.Spec)
	if err != nil {
		return time.Time{}, err
	}
	if strings.TrimSpace(at.Spec.Command) == "" {
		return time.Time{}, errors.New("spec.command is empty")
	}
	return schedule, nil
}

// seconds converts a deadline to a Duration; values beyond what a Duration
// holds (about 292 years) mean "never", not an overflow.
func seconds(s int64) time.Duration {
	if s > math.MaxInt64/int64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(s) * time.Second
}

// startingDeadline is when the command must have started by; zero if never.
func startingDeadline(at *cnatv1alpha1.At, schedule time.Time) time.Time {
	if at.Spec.StartingDeadlineSeconds == nil {
		return time.Time{}
	}
	return schedule.Add(seconds(*at.Spec.StartingDeadlineSeconds))
}

func pastStartingDeadline(at *cnatv1alpha1.At, schedule, now time.Time) bool {
	deadline := startingDeadline(at, schedule)
	return !deadline.IsZero() && now.After(deadline)
}

func pending(in Input, schedule time.Time) Action {
	at, wait := in.At, schedule.Sub(in.Now)
	st := at.Status
	if st.Phase == cnatv1alpha1.PhasePending && st.ObservedGeneration == at.Generation &&
		st.ScheduledTime != nil && st.ScheduledTime.Time.Equal(schedule.Truncate(time.Microsecond)) {
		return Action{Type: Wait, RequeueAfter: wait}
	}
	status := at.Status.DeepCopy()
	status.Phase = cnatv1alpha1.PhasePending
	status.ScheduledTime = microTime(schedule)
	status.Reason = cnatv1alpha1.ReasonScheduled
	status.Message = "runs at " + schedule.Format(time.RFC3339Nano)
	setCondition(status, in, cnatv1alpha1.ConditionStarted, metav1.ConditionFalse, status.Reason, status.Message)
	resumed(status, in)
	return Action{
		Type: WriteStatus, Status: status, RequeueAfter: wait,
		Event: &Event{Type: corev1.EventTypeNormal, Reason: cnatv1alpha1.ReasonScheduled, Note: status.Message},
	}
}

// suspended records, once per spec generation, that spec.suspend holds a
// PENDING At. No timer: only clearing spec.suspend (a new generation) moves it.
func suspended(in Input, schedule time.Time) Action {
	at := in.At
	st := at.Status
	if st.Phase == cnatv1alpha1.PhasePending && st.ObservedGeneration == at.Generation &&
		meta.IsStatusConditionTrue(st.Conditions, cnatv1alpha1.ConditionSuspended) {
		return Action{Type: Wait}
	}
	status := at.Status.DeepCopy()
	status.Phase = cnatv1alpha1.PhasePending
	status.ScheduledTime = microTime(schedule)
	status.Reason = cnatv1alpha1.ReasonSuspended
	if in.Now.Before(schedule) {
		status.Message = fmt.Sprintf("suspended: no pod is created at %s while spec.suspend is true",
			schedule.Format(time.RFC3339Nano))
	} else {
		status.Message = fmt.Sprintf("suspended: its schedule %s has passed; it runs when spec.suspend is cleared, unless startingDeadlineSeconds has passed by then",
			schedule.Format(time.RFC3339Nano))
	}
	setCondition(status, in, cnatv1alpha1.ConditionSuspended, metav1.ConditionTrue, status.Reason, status.Message)
	setCondition(status, in, cnatv1alpha1.ConditionStarted, metav1.ConditionFalse, status.Reason, status.Message)
	return Action{Type: WriteStatus, Status: status,
		Event: &Event{Type: corev1.EventTypeNormal, Reason: cnatv1alpha1.ReasonSuspended, Note: status.Message}}
}

// resumed sets the Suspended condition False once spec.suspend is cleared,
// on the next status the At writes.
func resumed(status *cnatv1alpha1.AtStatus, in Input) {
	if meta.IsStatusConditionTrue(status.Conditions, cnatv1alpha1.ConditionSuspended) {
		setCondition(status, in, cnatv1alpha1.ConditionSuspended, metav1.ConditionFalse, cnatv1alpha1.ReasonResumed,
			"spec.suspend was cleared")
	}
}

// createRefused records, once per reason, that the API server refuses the
// pod, and retries with a backoff that doubles from the first refusal and
// never passes the starting deadline.
func createRefused(in Input, schedule time.Time) Action {
	status := in.At.Status.DeepCopy()
	status.Phase = cnatv1alpha1.PhasePending
	status.ScheduledTime = microTime(schedule)
	action := hold(in, status, cnatv1alpha1.ReasonFailedCreate,
		fmt.Sprintf("the API server refused pod %s: %s", PodName(in.At), in.CreateRefused.Error()))
	retry := createRetryMin
	if held := meta.FindStatusCondition(in.At.Status.Conditions, cnatv1alpha1.ConditionHeld); action.Type == Wait && held != nil {
		retry = min(max(in.Now.Sub(held.LastTransitionTime.Time), createRetryMin), createRetryMax)
	}
	if deadline := startingDeadline(in.At, schedule); !deadline.IsZero() {
		// Just past the deadline, so that the next decision is Missed.
		retry = min(retry, deadline.Sub(in.Now)+time.Millisecond)
	}
	action.RequeueAfter = retry
	return action
}

// hold sets the Held condition to reason, with a Warning Event, unless it
// already says so: one Event per reason, not one per retry or pod update.
func hold(in Input, status *cnatv1alpha1.AtStatus, reason, message string) Action {
	held := meta.FindStatusCondition(in.At.Status.Conditions, cnatv1alpha1.ConditionHeld)
	if held != nil && held.Status == metav1.ConditionTrue && held.Reason == reason {
		return Action{Type: Wait}
	}
	status.Reason, status.Message = reason, message
	setCondition(status, in, cnatv1alpha1.ConditionHeld, metav1.ConditionTrue, reason, message)
	return Action{Type: WriteStatus, Status: status,
		Event: &Event{Type: corev1.EventTypeWarning, Reason: reason, Note: message}}
}

// observe follows the At's own pod to its end, recording RUNNING first, and
// enforces the deadlines.
func observe(in Input, schedule time.Time) Action {
	at, pod := in.At, in.Pod
	if at.Status.Phase != cnatv1alpha1.PhaseRunning {
		return running(in, schedule)
	}
	started, created := containerStarted(pod), podCreated(pod)
	startBy := startingDeadline(at, schedule)
	var activeUntil time.Time
	if at.Spec.ActiveDeadlineSeconds != nil {
		activeUntil = created.Add(seconds(*at.Spec.ActiveDeadlineSeconds))
	}
	deleting := pod.DeletionTimestamp != nil
	switch {
	case pod.Status.Phase == corev1.PodSucceeded:
		return finish(in, cnatv1alpha1.ResultSucceeded, cnatv1alpha1.ReasonSucceeded, "command exited with code 0", pod)
	case pod.Status.Phase == corev1.PodFailed && !deleting:
		reason, message := failure(pod)
		return finish(in, cnatv1alpha1.ResultFailed, reason, message, pod)
	case !started && !startBy.IsZero() && !in.Now.Before(startBy):
		if !deleting {
			return Action{Type: DeletePod, Pod: pod}
		}
		return finish(in, cnatv1alpha1.ResultMissed, cnatv1alpha1.ReasonMissedStartingDeadline,
			fmt.Sprintf("the command had not started %s after the schedule (startingDeadlineSeconds=%d): %s",
				in.Now.Sub(schedule).Round(time.Millisecond), *at.Spec.StartingDeadlineSeconds, whatHolds(at, pod)), pod)
	case !activeUntil.IsZero() && !in.Now.Before(activeUntil):
		if !deleting {
			return Action{Type: DeletePod, Pod: pod}
		}
		return finish(in, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonDeadlineExceeded,
			fmt.Sprintf("the run took longer than activeDeadlineSeconds=%d after pod %s was created; the pod was deleted",
				*at.Spec.ActiveDeadlineSeconds, pod.Name), pod)
	case deleting:
		return finish(in, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonPodDeleted,
			fmt.Sprintf("pod %s is being deleted before it finished; the command is not run again", pod.Name), pod)
	}

	// Still running or waiting: wake up for the nearer deadline, and say what holds it.
	var next time.Duration
	for _, deadline := range []time.Time{onlyIf(!started, startBy), activeUntil} {
		if left := deadline.Sub(in.Now); !deadline.IsZero() && (next == 0 || left < next) {
			next = left
		}
	}
	action := Action{Type: Wait}
	reason, message := Hold(pod)
	held := meta.IsStatusConditionTrue(at.Status.Conditions, cnatv1alpha1.ConditionHeld)
	switch {
	case reason != "":
		action = hold(in, at.Status.DeepCopy(), reason, fmt.Sprintf("pod %s: %s", pod.Name, message))
	case held:
		status := at.Status.DeepCopy()
		status.Reason = cnatv1alpha1.ReasonNotHeld
		status.Message = fmt.Sprintf("pod %s is no longer held", pod.Name)
		setCondition(status, in, cnatv1alpha1.ConditionHeld, metav1.ConditionFalse, status.Reason, status.Message)
		action = Action{Type: WriteStatus, Status: status,
			Event: &Event{Type: corev1.EventTypeNormal, Reason: cnatv1alpha1.ReasonNotHeld, Note: status.Message}}
	}
	action.RequeueAfter = next
	return action
}

// onlyIf is t when cond holds, else the zero time (no deadline).
func onlyIf(cond bool, t time.Time) time.Time {
	if !cond {
		return time.Time{}
	}
	return t
}

// whatHolds names why pod has not started, for a Missed message.
func whatHolds(at *cnatv1alpha1.At, pod *corev1.Pod) string {
	if reason, message := Hold(pod); reason != "" {
		return reason + ": " + message
	}
	if held := meta.FindStatusCondition(at.Status.Conditions, cnatv1alpha1.ConditionHeld); held != nil && held.Status == metav1.ConditionTrue {
		return held.Reason + ": " + held.Message
	}
	return fmt.Sprintf("pod %s had not started its container", pod.Name)
}

// running records the At's pod as RUNNING: the pod this controller just
// created, or one created before a restart or a failed status write. The
// controller then decides again on the new status: the pod may already be
// held, past a deadline or finished.
func running(in Input, schedule time.Time) Action {
	pod := in.Pod
	status := in.At.Status.DeepCopy()
	status.Phase = cnatv1alpha1.PhaseRunning
	status.ScheduledTime = microTime(schedule)
	status.PodName = pod.Name
	status.Reason = cnatv1alpha1.ReasonPodCreated
	created := podCreated(pod)
	status.StartTime = microTime(created)
	if _, ok := PodStartTime(pod); ok {
		status.Message = fmt.Sprintf("pod %s created %s after the schedule", pod.Name, status.StartTime.Sub(status.ScheduledTime.Time))
	} else {
		status.Message = fmt.Sprintf("pod %s created at %s", pod.Name, created.UTC().Format(time.RFC3339))
	}
	setCondition(status, in, cnatv1alpha1.ConditionStarted, metav1.ConditionTrue, status.Reason, status.Message)
	resumed(status, in)
	return Action{Type: WriteStatus, Status: status, Again: true,
		Event: &Event{Type: corev1.EventTypeNormal, Reason: cnatv1alpha1.ReasonPodCreated, Note: status.Message}}
}

// podCreated is when pod was created: its start-time annotation (to the
// microsecond), else its creationTimestamp.
func podCreated(pod *corev1.Pod) time.Time {
	if started, ok := PodStartTime(pod); ok {
		return started
	}
	return pod.CreationTimestamp.Time
}

// PodEnded says whether pod has finished or is going away: nothing more will
// happen to it that changes its At.
func PodEnded(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || pod.DeletionTimestamp != nil
}

// Hold names what keeps pod's command from starting: the scheduler's
// Unschedulable, or a container's waiting reason other than the normal
// ContainerCreating and PodInitializing (ErrImagePull, CreateContainerConfigError,
// ...). ImagePullBackOff is reported as ErrImagePull: the kubelet alternates
// the two, and a change of reason is what makes an Event.
func Hold(pod *corev1.Pod) (reason, message string) {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Reason, c.Message
		}
	}
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range statuses {
			waiting := cs.State.Waiting
			if waiting == nil || waiting.Reason == "" || waiting.Reason == "ContainerCreating" || waiting.Reason == "PodInitializing" {
				continue
			}
			if waiting.Reason == "ImagePullBackOff" {
				return "ErrImagePull", waiting.Message
			}
			return waiting.Reason, waiting.Message
		}
	}
	return "", ""
}

// containerStarted says whether the command's container has started.
func containerStarted(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == ContainerName && (cs.State.Running != nil || cs.State.Terminated != nil) {
			return true
		}
	}
	return false
}

// failure names why a pod failed: the pod's own reason (DeadlineExceeded,
// Evicted) first, then the container's when it says more than "Error".
func failure(pod *corev1.Pod) (reason, message string) {
	reason, message = cnatv1alpha1.ReasonPodFailed, "pod failed"
	if term := terminated(pod); term != nil {
		message = fmt.Sprintf("command exited with code %d", term.ExitCode)
		if term.Reason != "" && term.Reason != "Error" {
			reason = term.Reason
			message += " (" + term.Reason + ")"
		}
	}
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
		message = strings.TrimSpace(pod.Status.Message + "; " + message)
	}
	return reason, message
}

func terminated(pod *corev1.Pod) *corev1.ContainerStateTerminated {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == ContainerName && cs.State.Terminated != nil {
			return cs.State.Terminated
		}
	}
	return nil
}

func finish(in Input, result cnatv1alpha1.Result, reason, message string, pod *corev1.Pod) Action {
	status := in.At.Status.DeepCopy()
	status.Phase = cnatv1alpha1.PhaseDone
	status.Result = result
	status.Reason = reason
	status.Message = message
	status.CompletionTime = microTime(in.Now)
	if pod != nil {
		if term := terminated(pod); term != nil {
			status.ExitCode = ptr.To(term.ExitCode)
		}
	}
	eventType, conditionType := corev1.EventTypeWarning, cnatv1alpha1.ConditionFailed
	if result == cnatv1alpha1.ResultSucceeded {
		eventType, conditionType = corev1.EventTypeNormal, cnatv1alpha1.ConditionComplete
	}
	if status.StartTime == nil {
		setCondition(status, in, cnatv1alpha1.ConditionStarted, metav1.ConditionFalse, reason, message)
	}
	if meta.IsStatusConditionTrue(status.Conditions, cnatv1alpha1.ConditionHeld) {
		setCondition(status, in, cnatv1alpha1.ConditionHeld, metav1.ConditionFalse, reason, message)
	}
	resumed(status, in)
	setCondition(status, in, conditionType, metav1.ConditionTrue, reason, message)
	// Decide again: the pod's finalizer is released once DONE is stored, and
	// a TTL of 0 deletes the At at once.
	return Action{Type: WriteStatus, Status: status, Again: true,
		Event: &Event{Type: eventType, Reason: string(result), Note: reason + ": " + message}}
}

// expire deletes a DONE At once its ttlSecondsAfterFinished has passed.
func expire(in Input) Action {
	at := in.At
	if at.Spec.TTLSecondsAfterFinished == nil {
		return Action{Type: Wait}
	}
	finished := at.CreationTimestamp.Time
	if at.Status.CompletionTime != nil {
		finished = at.Status.CompletionTime.Time
	}
	if left := finished.Add(time.Duration(*at.Spec.TTLSecondsAfterFinished) * time.Second).Sub(in.Now); left > 0 {
		return Action{Type: Wait, RequeueAfter: left}
	}
	return Action{Type: DeleteAt}
}

func setCondition(status *cnatv1alpha1.AtStatus, in Input, conditionType string, value metav1.ConditionStatus, reason, message string) {
	status.ObservedGeneration = in.At.Generation
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type: conditionType, Status: value, Reason: reason, Message: message,
		ObservedGeneration: in.At.Generation, LastTransitionTime: metav1.NewTime(in.Now),
	})
}

func microTime(t time.Time) *metav1.MicroTime {
	m := metav1.NewMicroTime(t.Truncate(time.Microsecond))
	return &m
}
