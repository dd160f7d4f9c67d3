package plugin

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

type createOptions struct {
	when             whenFlags
	image            string
	startingDeadline time.Duration
	activeDeadline   time.Duration
	ttl              time.Duration
	labels           map[string]string
	dryRun           dryRunFlag
}

func newCreateCommand(o *Options) *cobra.Command {
	var co createOptions
	cmd := &cobra.Command{
		Use:   "create NAME (--in DURATION | --at TIME [--time-zone ZONE]) [flags] -- COMMAND [ARG...]",
		Short: "Create an At that runs COMMAND once, at the given time",
		Long: `Create an At that runs COMMAND once, with sh -c, in a pod, at the given time,
and print the instant it resolved to.

One word after -- is a shell script, taken as is (pipes, &&, redirections);
several words are a command and its arguments, each kept as one argument.`,
		Example: `  kubectl at create hello --in 5m -- echo hello
  kubectl at create migrate --in 0s --image app:v42 -- ./migrate --to v42
  kubectl at create report --at 09:00 --time-zone Europe/Berlin -- 'date; ./report | gzip > /out/r.gz'
  kubectl at create launch --at 2026-12-01T09:00:00+01:00 --starting-deadline 30s -- ./launch
  kubectl at create hello --in 1h --dry-run=client -o yaml -- echo hello`,
		Args: cobra.MinimumNArgs(1),
	}
	fs := cmd.Flags()
	co.when.add(fs)
	fs.StringVar(&co.image, "image", "", "Image to run the command in; it must have sh. Default: the operator's --default-image.")
	fs.DurationVar(&co.startingDeadline, "starting-deadline", 0, "Skip the run (result Missed) if it cannot start this long after its time, e.g. 30s. Default: run however late.")
	fs.DurationVar(&co.activeDeadline, "active-deadline", 0, "Stop the command after it has run this long, e.g. 10m. Default: no limit.")
	fs.DurationVar(&co.ttl, "ttl", 0, "Delete the At and its pod this long after it is DONE, e.g. 1h. Default: keep them.")
	fs.StringToStringVarP(&co.labels, "labels", "l", nil, "Labels of the At, e.g. -l team=data,kind=migration.")
	co.dryRun.add(fs)
	cmd.MarkFlagsMutuallyExclusive("in", "at")
	pf := newPrintFlags(cmd, "created", false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkPrintFlags(pf); err != nil {
			return err
		}
		return runCreate(cmd, o, &co, pf, args)
	}
	return cmd
}

func runCreate(cmd *cobra.Command, o *Options, co *createOptions, pf *genericclioptions.PrintFlags, args []string) error {
	name := args[0]
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("%q is not a valid At name: %s", name, strings.Join(errs, "; "))
	}
	if dash := cmd.ArgsLenAtDash(); dash != 1 && len(args) > 1 {
		return fmt.Errorf("put the command after --: kubectl at create %s --in 5m -- %s", name, strings.Join(args[1:], " "))
	}
	command, err := JoinCommand(args[1:])
	if err != nil {
		return err
	}
	if err := co.dryRun.validate(); err != nil {
		return err
	}
	now := o.Now()
	when, err := co.when.when(cmd, nil).Resolve(now)
	if err != nil {
		return err
	}
	a := &cnatv1alpha1.At{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: co.labels},
		Spec: cnatv1alpha1.AtSpec{
			Schedule: FormatSchedule(when),
			Command:  command,
			Image:    co.image,
		},
	}
	if cmd.Flags().Changed("starting-deadline") {
		if a.Spec.StartingDeadlineSeconds, err = seconds("starting-deadline", co.startingDeadline, time.Second); err != nil {
			return err
		}
	}
	if cmd.Flags().Changed("active-deadline") {
		if a.Spec.ActiveDeadlineSeconds, err = seconds("active-deadline", co.activeDeadline, time.Second); err != nil {
			return err
		}
	}
	if cmd.Flags().Changed("ttl") {
		ttl, err := seconds("ttl", co.ttl, 0)
		if err != nil {
			return err
		}
		ttl32 := int32(min(*ttl, int64(1<<31-1)))
		a.Spec.TTLSecondsAfterFinished = &ttl32
	}
	s, err := o.sessionFor(co.dryRun.value != "client")
	if err != nil {
		return err
	}
	a.Namespace = s.namespace
	return s.submit(cmd.Context(), pf, &co.dryRun, a, ", "+whenText(when, now))
}
