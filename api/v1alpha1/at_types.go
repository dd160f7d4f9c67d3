package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is where an At is in its single run.
// +kubebuilder:validation:Enum=PENDING;RUNNING;DONE
type Phase string

const (
	// PhasePending: waiting for the schedule.
	PhasePending Phase = "PENDING"
	// PhaseRunning: the pod has been created and has not finished.
	PhaseRunning Phase = "RUNNING"
	// PhaseDone: finished, one way or another; status.result says how.
	PhaseDone Phase = "DONE"
)

// Result is how a finished At ended.
// +kubebuilder:validation:Enum=Succeeded;Failed;Missed
type Result string

const (
	ResultSucceeded Result = "Succeeded"
	ResultFailed    Result = "Failed"
	ResultMissed    Result = "Missed"
)

// Reasons set in status.reason and on conditions and events.
const (
	ReasonScheduled              = "Scheduled"
	ReasonPodCreated             = "PodCreated"
	ReasonSucceeded              = "Succeeded"
	ReasonPodFailed              = "PodFailed"
	ReasonPodDeleted             = "PodDeleted"
	ReasonPodConflict            = "PodNameConflict"
	ReasonPodRejected            = "PodRejected"
	ReasonMissedStartingDeadline = "MissedStartingDeadline"
	ReasonDeadlineExceeded       = "DeadlineExceeded"
	ReasonInvalidSpec            = "InvalidSpec"
	// ReasonFailedCreate: the API server refused the pod (a quota, an
	// admission webhook, Pod Security); the create is retried with a capped
	// backoff until startingDeadlineSeconds, if set, ends the At as Missed.
	ReasonFailedCreate = "FailedCreate"
	// ReasonNotHeld: what held the run (ConditionHeld) has cleared.
	ReasonNotHeld = "NotHeld"
	// ReasonSuspended: spec.suspend keeps a PENDING At from starting.
	ReasonSuspended = "Suspended"
	// ReasonResumed: spec.suspend was cleared.
	ReasonResumed = "Resumed"
)

// Condition types in status.conditions. They mirror a Job's: Started once the
// pod exists, then exactly one of Complete or Failed. Held is True while
// something keeps the command from starting (the pod create is refused, the
// pod is unschedulable, its image cannot be pulled, ...); its reason names it.
const (
	ConditionStarted  = "Started"
	ConditionComplete = "Complete"
	ConditionFailed   = "Failed"
	ConditionHeld     = "Held"
	// ConditionSuspended is True while spec.suspend holds a PENDING At, as
	// a Job's Suspended condition.
	ConditionSuspended = "Suspended"
)

// RunFinalizer is set on every run pod at its creation and removed only once
// the At's DONE is stored (or the At is gone): a deleted pod stays visible,
// with a deletionTimestamp, until its At has recorded how it ended, so the
// pod's deterministic name can never be taken by a second run of the same At.
// The Job controller's batch.kubernetes.io/job-tracking is the model.
const RunFinalizer = "cnat.programming-kubernetes.info/run"

// AtSpec is what to run and when.
// +kubebuilder:validation:XValidation:rule="has(self.timeZone) || self.schedule.matches('(Z|[+-][0-9]{2}:[0-9]{2})$')",fieldPath=".schedule",message="spec.schedule must be an RFC 3339 date-time with an offset, e.g. 2026-02-10T20:35:00Z, or a local date-time with spec.timeZone set"
// +kubebuilder:validation:XValidation:rule="!has(self.timeZone) || !self.schedule.matches('(Z|[+-][0-9]{2}:[0-9]{2})$')",fieldPath=".schedule",message="spec.schedule must be a local date-time without an offset, e.g. 2026-03-29T02:30:00, when spec.timeZone is set"
type AtSpec struct {
	// Schedule is the instant to run the command at: in RFC 3339 with an
	// explicit offset, e.g. "2026-02-10T20:35:00Z" or "2026-02-10T21:35:00.250+01:00";
	// or, with timeZone, a local date-time without one, e.g. "2026-03-29T02:30:00".
	// Its instant in UTC falls in the years 0001 to 9999.
	// The format check rejects impossible dates such as February 30 (a local
	// date-time is checked as if in UTC); the range rules keep the instant
	// one that status timestamps can hold.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?$') && !format.datetime().validate(self.matches('(Z|[+-][0-9]{2}:[0-9]{2})$') ? self : self + 'Z').hasValue()",message="spec.schedule must be an RFC 3339 date-time, e.g. 2026-02-10T20:35:00Z (or 2026-02-10T20:35:00 with spec.timeZone)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^9999-12-31T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\\\.[0-9]{1,9})?-[0-9]{2}:[0-9]{2}$') || int(self.substring(11, 13)) * 60 + int(self.substring(14, 16)) + int(self.substring(size(self) - 5, size(self) - 3)) * 60 + int(self.substring(size(self) - 2, size(self))) < 1440",message="spec.schedule must fall in the years 0001 to 9999 once converted to UTC"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^0001-01-01T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\\\.[0-9]{1,9})?[+][0-9]{2}:[0-9]{2}$') || int(self.substring(11, 13)) * 60 + int(self.substring(14, 16)) >= int(self.substring(size(self) - 5, size(self) - 3)) * 60 + int(self.substring(size(self) - 2, size(self)))",message="spec.schedule must fall in the years 0001 to 9999 once converted to UTC"
	Schedule string `json:"schedule"`

	// TimeZone is an IANA time zone name, e.g. "Europe/Berlin": schedule is
	// then a local date-time in that zone. A local time that does not exist
	// (the hour skipped when clocks go forward) runs as much later as the
	// gap is long (02:30 in a one-hour gap runs at 03:30); one that happens
	// twice (clocks go back) runs at the first. Admission checks the name
	// against the API server's zone database; the controller checks it
	// against its own (embedded) one, ending the At Failed InvalidSpec if it
	// does not know it.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$') && self != 'Local'",message="spec.timeZone must be an IANA time zone name such as Europe/Berlin"
	// +kubebuilder:validation:XValidation:rule="timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0",message="spec.timeZone must be a time zone the API server knows, such as Europe/Berlin"
	TimeZone string `json:"timeZone,omitempty"`

	// Suspend holds a PENDING At: no pod is created while it is true, and
	// the status says so. Cleared after the schedule, the command runs at
	// once, unless startingDeadlineSeconds has passed (then Missed). It can
	// change until the At is RUNNING, like the rest of the spec.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`

	// Template is the run pod's template, as a Job's. The command runs in its
	// container named "command" (added if missing): its image defaults to
	// spec.image, then the manager's --default-image, and the operator sets
	// its command to `sh -c <spec.command>`. No other regular container is
	// allowed (initContainers are); restartPolicy is Never. The operator's
	// name, owner reference, labels, annotations and finalizer win. Unset
	// fields keep the operator's defaults: the restricted Pod Security
	// settings and no service account token unless serviceAccountName or
	// automountServiceAccountToken asks for one.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.spec) || size(self.spec.containers) == 0 || (size(self.spec.containers) == 1 && self.spec.containers[0].name == 'command')",message="spec.template.spec.containers may hold only the container named command: initContainers run before it"
	// +kubebuilder:validation:XValidation:rule="!has(self.spec) || size(self.spec.containers) == 0 || (!has(self.spec.containers[0].command) && !has(self.spec.containers[0].args))",message="spec.template.spec.containers[command] must not set command or args: the operator runs sh -c spec.command"
	// +kubebuilder:validation:XValidation:rule="!has(self.spec) || !has(self.spec.restartPolicy) || self.spec.restartPolicy == 'Never'",message="spec.template.spec.restartPolicy must be Never (or unset): the command runs once"
	Template *corev1.PodTemplateSpec `json:"template,omitempty"`

	// Command is run with `sh -c` in the pod.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	Command string `json:"command"`

	// Image is the container image the command runs in; it must have `sh`.
	// Defaults to the manager's --default-image.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[a-z0-9]+:[a-f0-9]{32,})?$')",message="spec.image must be an image reference such as busybox:1.37 or registry.example/team/tool@sha256:..."
	Image string `json:"image,omitempty"`

	// StartingDeadlineSeconds: the command must have started within this many
	// seconds after the schedule. If it has not (the manager was down, the At
	// was created late, the pod create was refused, the pod is unschedulable
	// or its image cannot be pulled), the pod, if any, is deleted and the At
	// ends as Missed, its message naming what held the run. Unset: wait for
	// as long as it takes.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483647
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`

	// ActiveDeadlineSeconds bounds how long the run may take, counted from
	// the pod's creation (so time spent unschedulable or pulling counts): the
	// operator then deletes the pod and the At ends Failed with reason
	// DeadlineExceeded. The pod carries it too, as the kubelet's backstop.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483647
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`

	// TTLSecondsAfterFinished deletes the At (and with it its pod) this many
	// seconds after it is DONE. Unset: kept forever.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// AtStatus is what happened so far.
type AtStatus struct {
	// Phase is PENDING, RUNNING or DONE.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// Result says how a DONE At ended.
	// +optional
	Result Result `json:"result,omitempty"`

	// ExitCode of the command, once its container has terminated.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`

	// Reason is a CamelCase word for the last transition, e.g. PodDeleted.
	// +optional
	Reason string `json:"reason,omitempty"`

	// Message explains Reason to a human.
	// +optional
	Message string `json:"message,omitempty"`

	// PodName is the pod that runs (or ran) the command.
	// +optional
	PodName string `json:"podName,omitempty"`

	// ScheduledTime is spec.schedule as the controller understood it.
	// +optional
	ScheduledTime *metav1.MicroTime `json:"scheduledTime,omitempty"`

	// StartTime is when the pod was created.
	// +optional
	StartTime *metav1.MicroTime `json:"startTime,omitempty"`

	// CompletionTime is when the At became DONE.
	// +optional
	CompletionTime *metav1.MicroTime `json:"completionTime,omitempty"`

	// ObservedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Started, then Complete or Failed; Held while something
	// keeps the command from starting.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// At runs a shell command once, in a pod, at spec.schedule.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=at
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Zone",type=string,JSONPath=`.spec.timeZone`,priority=1
// +kubebuilder:printcolumn:name="Suspend",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Result",type=string,JSONPath=`.status.result`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Command",type=string,JSONPath=`.spec.command`,priority=1
// +kubebuilder:selectablefield:JSONPath=`.status.phase`
// +kubebuilder:selectablefield:JSONPath=`.status.result`
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.phase) || oldSelf.status.phase == 'PENDING' || self.spec == oldSelf.spec",message="spec is immutable once status.phase is RUNNING or DONE: the command has already started"
type At struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AtSpec `json:"spec"`
	// +optional
	Status AtStatus `json:"status,omitempty"`
}

// AtList is a list of At.
// +kubebuilder:object:root=true
type AtList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []At `json:"items"`
}
