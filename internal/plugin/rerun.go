package plugin

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// RerunOfAnnotation names the At a rerun copies. A rerun of a rerun names
// the first one, so names do not grow with each rerun.
const RerunOfAnnotation = "cnat.programming-kubernetes.info/rerun-of"

// maxBaseLength keeps NAME-xxxxx within what the API server allows for a
// generated name (as metadata.generateName truncates its base).
const maxBaseLength = 63 - 6

func randomSuffix() string { return utilrand.String(5) }

type rerunOptions struct {
	when   whenFlags
	name   string
	dryRun dryRunFlag
}

func newRerunCommand(o *Options) *cobra.Command {
	var ro rerunOptions
	cmd := &cobra.Command{
		Use:   "rerun NAME [--in DURATION | --at TIME] [--name NEW]",
		Short: "Run an At's spec again, now or later, as a new At",
		Long: `Create a new At with the spec of NAME (image, deadlines, TTL and labels too)
and a new schedule: now unless --in or --at says otherwise. The new At is
named NAME-xxxxx (or --name) and annotated ` + RerunOfAnnotation + `.
It is what "kubectl create job --from=cronjob/NAME" is for a CronJob.`,
		Example: `  kubectl at rerun migrate
  kubectl at rerun report --at 09:00 --time-zone Europe/Berlin
  kubectl at wait "$(kubectl at rerun migrate -o name)"`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeAtNames(o),
	}
	ro.when.add(cmd.Flags())
	cmd.Flags().StringVar(&ro.name, "name", "", "Name of the new At. Default: NAME-xxxxx, random.")
	ro.dryRun.add(cmd.Flags())
	cmd.MarkFlagsMutuallyExclusive("in", "at")
	pf := newPrintFlags(cmd, "created", false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkPrintFlags(pf); err != nil {
			return err
		}
		if err := ro.dryRun.validate(); err != nil {
			return err
		}
		now := o.Now()
		zero := time.Duration(0)
		when, err := ro.when.when(cmd, &zero).Resolve(now)
		if err != nil {
			return err
		}
		s, err := o.session()
		if err != nil {
			return err
		}
		orig, err := s.getAt(cmd, args[0])
		if err != nil {
			return err
		}
		a := Rerun(orig, when, ro.name, o.NameSuffix)
		if errs := validation.IsDNS1123Subdomain(a.Name); len(errs) > 0 {
			return fmt.Errorf("%q is not a valid At name: %s", a.Name, strings.Join(errs, "; "))
		}
		return s.submit(cmd.Context(), pf, &ro.dryRun, a, fmt.Sprintf(" as a rerun of at/%s, %s", orig.Name, whenText(when, now)))
	}
	return cmd
}

// Rerun is orig's spec, labels and (rerun) lineage under a new name, due at when.
func Rerun(orig *cnatv1alpha1.At, when time.Time, name string, suffix func() string) *cnatv1alpha1.At {
	base := orig.Name
	if first := orig.Annotations[RerunOfAnnotation]; first != "" {
		base = first
	}
	if name == "" {
		name = strings.TrimRight(base[:min(len(base), maxBaseLength)], "-.") + "-" + suffix()
	}
	a := &cnatv1alpha1.At{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   orig.Namespace,
			Labels:      maps.Clone(orig.Labels),
			Annotations: map[string]string{RerunOfAnnotation: base},
		},
		Spec: *orig.Spec.DeepCopy(),
	}
	a.Spec.Schedule = FormatSchedule(when)
	return a
}
