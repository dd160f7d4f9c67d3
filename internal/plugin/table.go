package plugin

import (
	"io"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// Columns of `kubectl at list` and `get`. Priority 1 columns appear with -o wide.
var tableColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name"},
	{Name: "Schedule", Type: "string", Description: "spec.schedule relative to now"},
	{Name: "Phase", Type: "string"},
	{Name: "Result", Type: "string"},
	{Name: "Exit", Type: "integer", Description: "the command's exit code"},
	{Name: "Finished", Type: "string", Description: "status.completionTime relative to now"},
	{Name: "Reason", Type: "string", Description: "why it did not succeed, or what it waits for"},
	{Name: "Pod", Type: "string", Priority: 1},
	{Name: "Command", Type: "string", Priority: 1},
	{Name: "Message", Type: "string", Priority: 1},
}

// routineReasons are the reasons of an At on its normal way; the table
// leaves them out so that the REASON column only speaks up when something is
// worth a look.
var routineReasons = map[string]bool{
	"":                            true,
	cnatv1alpha1.ReasonScheduled:  true,
	cnatv1alpha1.ReasonPodCreated: true,
	cnatv1alpha1.ReasonNotHeld:    true,
	cnatv1alpha1.ReasonSucceeded:  true,
}

// Table builds the table a person reads at a glance: times relative to now,
// phase, result, exit code, and the reason when the At did not succeed (or
// sits waiting for a reason other than its schedule).
func Table(ats []cnatv1alpha1.At, now time.Time) *metav1.Table {
	t := &metav1.Table{ColumnDefinitions: tableColumns}
	for i := range ats {
		a := &ats[i]
		schedule := a.Spec.Schedule
		if when, err := time.Parse(time.RFC3339Nano, a.Spec.Schedule); err == nil {
			schedule = Relative(when, now)
		}
		exit, finished, reason := "", "", ""
		if a.Status.ExitCode != nil {
			exit = strconv.Itoa(int(*a.Status.ExitCode))
		}
		if a.Status.CompletionTime != nil {
			finished = Relative(a.Status.CompletionTime.Time, now)
		}
		if a.Status.Result != cnatv1alpha1.ResultSucceeded && !routineReasons[a.Status.Reason] {
			reason = a.Status.Reason
		}
		phase := string(a.Status.Phase)
		if phase == "" {
			phase = "<new>" // not yet seen by the manager
		}
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells: []any{a.Name, schedule, phase, string(a.Status.Result), exit, finished, reason,
				a.Status.PodName, a.Spec.Command, a.Status.Message},
			Object: runtime.RawExtension{Object: a},
		})
	}
	return t
}

// PrintTable prints ats as Table does, with kubectl's table printer (the
// NAMESPACE column with allNamespaces, the priority columns with wide).
func PrintTable(w io.Writer, ats []cnatv1alpha1.At, now time.Time, allNamespaces, wide bool) error {
	p := printers.NewTablePrinter(printers.PrintOptions{WithNamespace: allNamespaces, Wide: wide})
	return p.PrintObj(Table(ats, now), w)
}
