package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// whenFlags are --in, --at and --time-zone, shared by create and rerun.
type whenFlags struct {
	in   time.Duration
	at   string
	zone string
}

func (w *whenFlags) add(fs *pflag.FlagSet) {
	fs.DurationVar(&w.in, "in", 0, "Run this long from now, a Go duration: 30s, 5m, 1h30m; 0s runs at once.")
	fs.StringVar(&w.at, "at", "", "Run at this time: RFC 3339 with an offset (2026-12-01T09:00:00+01:00), "+
		"a local date-time (2026-12-01T09:00) or a clock time (09:00: the next one, today or tomorrow), "+
		"the last two read in --time-zone.")
	fs.StringVar(&w.zone, "time-zone", "", "IANA time zone (Europe/Berlin, UTC) that a local --at is read in and "+
		"that the schedule is written in. Default: this machine's.")
}

// when reads the flags; defaultIn applies when neither --in nor --at was given.
func (w *whenFlags) when(cmd *cobra.Command, defaultIn *time.Duration) When {
	wh := When{At: w.at, Zone: w.zone}
	switch {
	case cmd.Flags().Changed("in"):
		in := w.in
		wh.In = &in
	case w.at == "":
		wh.In = defaultIn
	}
	return wh
}

// dryRunFlag is kubectl's --dry-run: none, client (print, send nothing) or
// server (the API server validates and admits, and persists nothing).
type dryRunFlag struct{ value string }

func (d *dryRunFlag) add(fs *pflag.FlagSet) {
	fs.StringVar(&d.value, "dry-run", "none", `Must be "none", "client", or "server". `+
		`client: only print the At that would be sent; server: submit it for validation without persisting it.`)
}

func (d *dryRunFlag) validate() error {
	switch d.value {
	case "none", "client", "server":
		return nil
	}
	return fmt.Errorf(`--dry-run must be "none", "client" or "server", not %q`, d.value)
}

func (d *dryRunFlag) createOptions() metav1.CreateOptions {
	if d.value == "server" {
		return metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	}
	return metav1.CreateOptions{}
}

// suffix is what kubectl appends to messages of a dry run.
func (d *dryRunFlag) suffix() string {
	if d.value == "none" {
		return ""
	}
	return " (" + d.value + " dry run)"
}

// newPrintFlags are kubectl's -o flags (json, yaml, name, templates);
// operation is the verb -o name prints ("created").
func newPrintFlags(cmd *cobra.Command, operation string, withWide bool) *genericclioptions.PrintFlags {
	pf := genericclioptions.NewPrintFlags(operation).WithTypeSetter(Scheme)
	pf.AddFlags(cmd)
	if withWide {
		out := cmd.Flags().Lookup("output")
		out.Usage = "Output format: wide (more columns), or one of " + fmt.Sprint(pf.AllowedFormats()) + "."
	}
	return pf
}

func outputFormat(pf *genericclioptions.PrintFlags) string {
	if pf.OutputFormat == nil {
		return ""
	}
	return *pf.OutputFormat
}

// submit creates a (a client dry run only pretends to) and prints it: what
// -o asks for, else "at/NAME created" and detail.
func (s *session) submit(ctx context.Context, pf *genericclioptions.PrintFlags, dry *dryRunFlag, a *cnatv1alpha1.At, detail string) error {
	if dry.value != "client" {
		created, err := s.Ats.Create(ctx, a, dry.createOptions())
		if err != nil {
			return s.apiError(fmt.Errorf("creating at/%s: %w", a.Name, err), "")
		}
		a = created
	}
	if outputFormat(pf) == "" {
		_, err := fmt.Fprintf(s.Out, "at/%s created%s%s\n", a.Name, dry.suffix(), detail)
		return err
	}
	if err := pf.Complete("%s" + dry.suffix()); err != nil {
		return err
	}
	p, err := pf.ToPrinter()
	if err != nil {
		return err
	}
	return p.PrintObj(a, s.Out)
}

// checkPrintFlags fails on an unknown -o before anything is created.
func checkPrintFlags(pf *genericclioptions.PrintFlags, extra ...string) error {
	f := outputFormat(pf)
	if f == "" {
		return nil
	}
	for _, e := range extra {
		if f == e {
			return nil
		}
	}
	_, err := pf.ToPrinter()
	return err
}

// whenText is the resolved instant for a person: the schedule as written and
// how far off it is.
func whenText(t, now time.Time) string {
	return fmt.Sprintf("runs at %s (%s)", FormatSchedule(t), Relative(t, now))
}

// seconds converts a deadline flag to whole seconds, at least min.
func seconds(flag string, d time.Duration, minimum time.Duration) (*int64, error) {
	if d%time.Second != 0 {
		return nil, fmt.Errorf("--%s %s: give whole seconds", flag, d)
	}
	if d < minimum {
		return nil, fmt.Errorf("--%s %s: must be at least %s", flag, d, minimum)
	}
	s := int64(d / time.Second)
	return &s, nil
}
