package plugin

import (
	"fmt"
	"strings"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// Exit codes of `kubectl at wait`. A Failed At passes its command's exit
// code (1-255) through, so a script can tell `exit 3` from `exit 4`; the codes
// below are what wait returns when there is no such code. They follow
// timeout(1) and `docker run` where those have one (124, 125), and sit just
// below them otherwise. A command may of course exit with one of these
// numbers itself; a script that must tell them apart reads
// `kubectl at get NAME -o jsonpath={.status.result}`.
const (
	// ExitSucceeded: DONE, Succeeded.
	ExitSucceeded = 0
	// ExitFailedWithoutCode: DONE, Failed, without a usable exit code: the
	// pod was deleted, rejected or stopped before its container ended, the
	// spec was invalid, or the reported code was 0 or outside 1-255.
	ExitFailedWithoutCode = 120
	// ExitMissed: DONE, Missed: the command never ran (startingDeadlineSeconds passed).
	ExitMissed = 121
	// ExitTimeout: --timeout passed before the At was DONE (as timeout(1)).
	ExitTimeout = 124
	// ExitWaitError: wait itself failed: no such At, the At was deleted while
	// waiting, the cluster could not be reached, a bad flag (as `docker run`).
	ExitWaitError = 125
)

// ExitCode maps a DONE At's status to wait's exit code; done is false
// while the At has not finished.
func ExitCode(s cnatv1alpha1.AtStatus) (code int, done bool) {
	if s.Phase != cnatv1alpha1.PhaseDone {
		return 0, false
	}
	switch s.Result {
	case cnatv1alpha1.ResultSucceeded:
		return ExitSucceeded, true
	case cnatv1alpha1.ResultMissed:
		return ExitMissed, true
	default: // Failed, or a result this version does not know: not a success either way
		if s.ExitCode != nil && *s.ExitCode >= 1 && *s.ExitCode <= 255 {
			return int(*s.ExitCode), true
		}
		return ExitFailedWithoutCode, true
	}
}

// Outcome is the one line wait prints when the At is DONE, e.g.
// "at/migrate: Failed, exit code 3 (PodFailed: the command exited with 3)".
func Outcome(name string, s cnatv1alpha1.AtStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "at/%s: %s", name, s.Result)
	if s.ExitCode != nil {
		fmt.Fprintf(&b, ", exit code %d", *s.ExitCode)
	}
	if why := reasonText(s); s.Result != cnatv1alpha1.ResultSucceeded && why != "" {
		fmt.Fprintf(&b, " (%s)", why)
	}
	return b.String()
}

// reasonText is "Reason: message", or whichever of the two is set.
func reasonText(s cnatv1alpha1.AtStatus) string {
	switch {
	case s.Reason != "" && s.Message != "":
		return s.Reason + ": " + s.Message
	default:
		return s.Reason + s.Message
	}
}
