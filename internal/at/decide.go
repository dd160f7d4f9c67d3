package at

import (
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// Kind is what the controller must do.
type Kind string

const (
	// Wait: nothing to write now; come back after RequeueAfter if it is set.
	Wait Kind = "Wait"
	// WriteStatus: write Status.
	WriteStatus Kind = "WriteStatus"
	// StartPod: create Pod, and write nothing else: RUNNING is written when
	// the pod is seen, by a low-priority reconcile, so that the Ats due at one
	// instant create their pods before they spend requests on status.
	StartPod Kind = "StartPod"
	// DeleteAt: the At's time to live after finishing is over.
	DeleteAt Kind = "DeleteAt"
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
	// PodCreated says the pod was created and RUNNING is not recorded yet:
	// if the pod is gone, it was deleted, not never created.
	PodCreated bool
}

// Event is a Kubernetes Event to emit once the action has succeeded.
type Event struct {
	Type   string
	Reason string
	Note   string
}

// Action is the one next step for an At.
type Action struct {
	Kind Kind
	// Pod is the pod StartPod creates, for the instant Schedule.
	Pod          *corev1.Pod
	Schedule     time.Time
	Status       *cnatv1alpha1.AtStatus
	RequeueAfter time.Duration
	// Again: decide again at once, on the status just written.
	Again bool
	Event *Event
	// Terminal is set when the spec can never run: retrying cannot help.
	Terminal error
}

// ParseSchedule parses spec.schedule the way admission validates it.
func ParseSchedule(schedule string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, schedule)
	if err != nil {
		return time.Time{}, fmt.Errorf("spec.schedule %q is not an RFC 3339 date-time: %w", schedule, err)
	}
	return t, nil
}

// Decide is the whole At state machine: PENDING until the schedule, then one
// pod and RUNNING, then DONE with a result; and what to do with a DONE At.
func Decide(in Input) Action {
	at := in.At
	if at.Status.Phase == cnatv1alpha1.PhaseDone {
		return expire(in)
	}
	schedule, err := validate(at)
	if err != nil {
		action := finish(in, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonInvalidSpec, err.Error(), nil)
		action.Terminal = err
		return action
	}
	if in.Pod != nil && !metav1.IsControlledBy(in.Pod, at) {
		return finish(in, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonPodConflict,
			fmt.Sprintf("pod %s already exists and is not controlled by this At; the command was not run", in.Pod.Name), nil)
	}
	switch {
	case in.PodRejected != nil:
		return finish(in, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonPodRejected,
			"the API server refused the pod: "+in.PodRejected.Error(), nil)
	case in.Pod != nil:
		return observe(in, schedule)
	case at.Status.Phase == cnatv1alpha1.PhaseRunning || in.PodCreated:
		return finish(in, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonPodDeleted,
			fmt.Sprintf("pod %s was deleted before it finished; the command is not run again", PodName(at)), nil)
	case in.Now.Before(schedule):
		return pending(in, schedule)
	case missed(at, schedule, in.Now):
		return finish(in, cnatv1alpha1.ResultMissed, cnatv1alpha1.ReasonMissedStartingDeadline,
			fmt.Sprintf("could not start until %s after the schedule, past startingDeadlineSeconds=%d",
				in.Now.Sub(schedule).Round(time.Millisecond), *at.Spec.StartingDeadlineSeconds), nil)
	default:
		return Action{Kind: StartPod, Pod: PodFor(in.At, in.DefaultImage, in.Now), Schedule: schedule}
	}
}

// validate catches what admission should have refused, for clusters where the
// CRD was installed without its validation.
func validate(at *cnatv1alpha1.At) (time.Time, error) {
	schedule, err := ParseSchedule(at.Spec.Schedule)
	if err != nil {
		return time.Time{}, err
	}
	if strings.TrimSpace(at.Spec.Command) == "" {
		return time.Time{}, errors.New("spec.command is empty")
	}
	return schedule, nil
}

func missed(at *cnatv1alpha1.At, schedule, now time.Time) bool {
	deadline := at.Spec.StartingDeadlineSeconds
	return deadline != nil && now.Sub(schedule) > time.Duration(*deadline)*time.Second
}

func pending(in Input, schedule time.Time) Action {
	at, wait := in.At, schedule.Sub(in.Now)
	st := at.Status
	if st.Phase == cnatv1alpha1.PhasePending && st.ObservedGeneration == at.Generation &&
		st.ScheduledTime != nil && st.ScheduledTime.Time.Equal(schedule.Truncate(time.Microsecond)) {
		return Action{Kind: Wait, RequeueAfter: wait}
	}
	status := at.Status.DeepCopy()
	status.Phase = cnatv1alpha1.PhasePending
	status.ScheduledTime = microTime(schedule)
	status.Reason = cnatv1alpha1.ReasonScheduled
	status.Message = "runs at " + schedule.Format(time.RFC3339Nano)
	setCondition(status, in, cnatv1alpha1.ConditionStarted, metav1.ConditionFalse, status.Reason, status.Message)
	return Action{
		Kind: WriteStatus, Status: status, RequeueAfter: wait,
		Event: &Event{Type: corev1.EventTypeNormal, Reason: cnatv1alpha1.ReasonScheduled, Note: status.Message},
	}
}

// observe follows the At's own pod to its end, recording RUNNING first.
func observe(in Input, schedule time.Time) Action {
	pod := in.Pod
	switch {
	case in.At.Status.Phase != cnatv1alpha1.PhaseRunning:
		return running(in, schedule)
	case pod.Status.Phase == corev1.PodSucceeded:
		return finish(in, cnatv1alpha1.ResultSucceeded, cnatv1alpha1.ReasonSucceeded, "command exited with code 0", pod)
	case pod.Status.Phase == corev1.PodFailed:
		reason, message := failure(pod)
		return finish(in, cnatv1alpha1.ResultFailed, reason, message, pod)
	case pod.DeletionTimestamp != nil:
		return finish(in, cnatv1alpha1.ResultFailed, cnatv1alpha1.ReasonPodDeleted,
			fmt.Sprintf("pod %s is being deleted before it finished; the command is not run again", pod.Name), pod)
	default:
		return Action{Kind: Wait}
	}
}

// running records the At's pod as RUNNING: the pod this controller just
// created, or one created before a restart or a failed status write.
func running(in Input, schedule time.Time) Action {
	pod := in.Pod
	status := in.At.Status.DeepCopy()
	status.Phase = cnatv1alpha1.PhaseRunning
	status.ScheduledTime = microTime(schedule)
	status.PodName = pod.Name
	status.Reason = cnatv1alpha1.ReasonPodCreated
	if started, ok := PodStartTime(pod); ok {
		status.StartTime = microTime(started)
		status.Message = fmt.Sprintf("pod %s created %s after the schedule", pod.Name, status.StartTime.Sub(status.ScheduledTime.Time))
	} else {
		status.StartTime = microTime(pod.CreationTimestamp.Time)
		status.Message = fmt.Sprintf("pod %s created at %s", pod.Name, pod.CreationTimestamp.UTC().Format(time.RFC3339))
	}
	setCondition(status, in, cnatv1alpha1.ConditionStarted, metav1.ConditionTrue, status.Reason, status.Message)
	action := Action{Kind: WriteStatus, Status: status,
		Event: &Event{Type: corev1.EventTypeNormal, Reason: cnatv1alpha1.ReasonPodCreated, Note: status.Message}}
	// No pod event will come to record how it ended.
	action.Again = PodEnded(pod)
	return action
}

// PodEnded says whether pod has finished or is going away: nothing more will
// happen to it that changes its At.
func PodEnded(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || pod.DeletionTimestamp != nil
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
			status.ExitCode = &term.ExitCode
		}
	}
	eventType, conditionType := corev1.EventTypeWarning, cnatv1alpha1.ConditionFailed
	if result == cnatv1alpha1.ResultSucceeded {
		eventType, conditionType = corev1.EventTypeNormal, cnatv1alpha1.ConditionComplete
	}
	if status.StartTime == nil {
		setCondition(status, in, cnatv1alpha1.ConditionStarted, metav1.ConditionFalse, reason, message)
	}
	setCondition(status, in, conditionType, metav1.ConditionTrue, reason, message)
	action := Action{Kind: WriteStatus, Status: status,
		Event: &Event{Type: eventType, Reason: string(result), Note: reason + ": " + message}}
	if in.At.Spec.TTLSecondsAfterFinished != nil {
		action.RequeueAfter = ttl(in.At)
		action.Again = action.RequeueAfter == 0
	}
	return action
}

// expire deletes a DONE At once its ttlSecondsAfterFinished has passed.
func expire(in Input) Action {
	at := in.At
	if at.Spec.TTLSecondsAfterFinished == nil {
		return Action{Kind: Wait}
	}
	finished := at.CreationTimestamp.Time
	if at.Status.CompletionTime != nil {
		finished = at.Status.CompletionTime.Time
	}
	if left := finished.Add(ttl(at)).Sub(in.Now); left > 0 {
		return Action{Kind: Wait, RequeueAfter: left}
	}
	return Action{Kind: DeleteAt}
}

func ttl(at *cnatv1alpha1.At) time.Duration {
	if at.Spec.TTLSecondsAfterFinished == nil {
		return 0
	}
	return time.Duration(*at.Spec.TTLSecondsAfterFinished) * time.Second
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
