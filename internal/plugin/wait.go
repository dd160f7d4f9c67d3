package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	watchtools "k8s.io/client-go/tools/watch"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

func newWaitCommand(o *Options) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait NAME [--timeout DURATION]",
		Short: "Block until an At is DONE, and exit with its command's exit code",
		Long: fmt.Sprintf(`Block until the At is DONE, print how it ended, and exit with:

  %3d       Succeeded
  1-255     Failed: the command's own exit code
  %3d       Failed without an exit code (pod deleted, rejected or stopped before the
            command ended, invalid spec; or a reported code of 0 or beyond 255)
  %3d       Missed: the command never ran (its starting deadline passed)
  %3d       --timeout passed first (as timeout(1))
  %3d       wait itself failed: no such At, deleted while waiting, no cluster, bad flags

It watches the At (no polling) and survives API server timeouts and dropped
connections.`, ExitSucceeded, ExitFailedWithoutCode, ExitMissed, ExitTimeout, ExitWaitError),
		Example: `  kubectl at create migrate --in 0s -- ./migrate && kubectl at wait migrate
  kubectl at wait nightly --timeout 10m || echo "nightly ended with $?"
  kubectl at wait "$(kubectl at rerun migrate -o name)"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(1)(cmd, args); err != nil {
				return &ExitError{Code: ExitWaitError, Err: err}
			}
			return nil
		},
		ValidArgsFunction: completeAtNames(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := runWait(cmd, o, args[0], timeout)
			var exit *ExitError
			if err != nil && !errors.As(err, &exit) {
				return &ExitError{Code: ExitWaitError, Err: err}
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, fmt.Sprintf("Give up after this long (exit %d); 0 waits as long as it takes.", ExitTimeout))
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: ExitWaitError, Err: fmt.Errorf("%w\nSee '%s --help' for usage", err, c.CommandPath())}
	})
	return cmd
}

func runWait(cmd *cobra.Command, o *Options, arg string, timeout time.Duration) error {
	if timeout < 0 {
		return fmt.Errorf("--timeout %s is negative", timeout)
	}
	s, err := o.session()
	if err != nil {
		return err
	}
	ctx, cancel := watchtools.ContextWithOptionalTimeout(cmd.Context(), timeout)
	defer cancel()
	// A plain read first: a missing At or CRD is an immediate, clear error,
	// where an informer would only retry.
	a, err := s.getAt(cmd, arg)
	if err != nil {
		return err
	}
	name := a.Name
	if _, done := ExitCode(a.Status); !done {
		a, err = until(ctx, s.atWatch(name), &cnatv1alpha1.At{}, "at", s.namespace, name, func(a *cnatv1alpha1.At) bool {
			_, done := ExitCode(a.Status)
			return done
		})
		if errors.Is(err, context.DeadlineExceeded) {
			phase := "not yet seen by the operator"
			if a != nil && a.Status.Phase != "" {
				phase = string(a.Status.Phase)
			}
			return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("timed out after %s waiting for at/%s to be DONE; it is %s", timeout, name, phase)}
		}
		if err != nil {
			return s.apiError(err, name)
		}
	}
	code, _ := ExitCode(a.Status)
	fmt.Fprintln(s.Out, Outcome(a.Name, a.Status))
	if code == 0 {
		return nil
	}
	return &ExitError{Code: code}
}
