package plugin

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

func newLogsCommand(o *Options) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME [-f]",
		Short: "Print the output of an At's run, whatever its pod is called",
		Long: `Print the output of the At's run. With -f, wait for the run to start if it
has not yet, then stream its output until the command ends.`,
		Example: `  kubectl at logs migrate
  kubectl at create hello --in 10s -- 'for i in 1 2 3; do echo $i; sleep 1; done' && kubectl at logs -f hello`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeAtNames(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogs(cmd, o, args[0], follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "Wait for the run to start, then stream its output until it ends.")
	return cmd
}

func runLogs(cmd *cobra.Command, o *Options, arg string, follow bool) error {
	s, err := o.session()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	a, err := s.getAt(cmd, arg)
	if err != nil {
		return err
	}
	name := a.Name
	podName, err := s.podOf(cmd, a)
	if err != nil {
		return err
	}
	if podName == "" {
		if !follow {
			return noRunYet(a, s)
		}
		// The pod appears at the schedule: watch the At until its status names
		// it, or it ends without one (Missed).
		a, err = until(ctx, s.atWatch(name), &cnatv1alpha1.At{}, "at", s.namespace, name, func(a *cnatv1alpha1.At) bool {
			return a.Status.PodName != "" || a.Status.Phase == cnatv1alpha1.PhaseDone
		})
		if err != nil {
			return s.apiError(err, name)
		}
		if podName = a.Status.PodName; podName == "" {
			return noRunYet(a, s)
		}
	}
	if follow {
		// Logs can be followed once the container has started; until then
		// the kubelet answers "waiting to start".
		_, err := until(ctx, s.podWatch(podName), &corev1.Pod{}, "pod", s.namespace, podName, containerStarted)
		if err != nil {
			return s.podGone(err, a, podName)
		}
	}
	stream, err := s.Core.Pods(s.namespace).GetLogs(podName, &corev1.PodLogOptions{Container: at.ContainerName, Follow: follow}).Stream(ctx)
	if err != nil {
		return s.podGone(fmt.Errorf("reading the output of at/%s from pod %s: %w", a.Name, podName, err), a, podName)
	}
	defer func() { _ = stream.Close() }()
	if _, err := io.Copy(s.Out, stream); err != nil {
		return fmt.Errorf("reading the output of at/%s from pod %s: %w", a.Name, podName, err)
	}
	return nil
}

// podOf finds the At's pod: status.podName, or, in the moment between the
// pod's creation and RUNNING being recorded, the pod carrying the At's UID.
func (s *session) podOf(cmd *cobra.Command, a *cnatv1alpha1.At) (string, error) {
	if a.Status.PodName != "" {
		return a.Status.PodName, nil
	}
	pods, err := s.Core.Pods(a.Namespace).List(cmd.Context(), metav1.ListOptions{LabelSelector: at.AtUIDLabel + "=" + string(a.UID)})
	if err != nil {
		return "", fmt.Errorf("looking for the pod of at/%s: %w", a.Name, err)
	}
	for _, p := range pods.Items {
		if metav1.IsControlledBy(&p, a) {
			return p.Name, nil
		}
	}
	return "", nil
}

func noRunYet(a *cnatv1alpha1.At, s *session) error {
	if a.Status.Phase == cnatv1alpha1.PhaseDone {
		return fmt.Errorf("at/%s ended %s without a pod (%s): there is no output", a.Name, a.Status.Result, reasonText(a.Status))
	}
	return fmt.Errorf("at/%s has not run yet (%s); use -f to wait for its output", a.Name, relativeSchedule(a, s.Now()))
}

// podGone turns a missing pod into an explanation.
func (s *session) podGone(err error, a *cnatv1alpha1.At, podName string) error {
	var gone *goneError
	if apierrors.IsNotFound(err) || errors.As(err, &gone) {
		return fmt.Errorf("the pod %s of at/%s no longer exists (deleted, or with the At's TTL): its output is gone", podName, a.Name)
	}
	return err
}

func containerStarted(p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return true
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == at.ContainerName && (cs.State.Running != nil || cs.State.Terminated != nil) {
			return true
		}
	}
	return false
}

// relativeSchedule says when a not yet started At is due: "due in 4m12s".
func relativeSchedule(a *cnatv1alpha1.At, now time.Time) string {
	when, err := time.Parse(time.RFC3339Nano, a.Spec.Schedule)
	if err != nil {
		return "schedule " + a.Spec.Schedule
	}
	return "due " + Relative(when, now)
}
