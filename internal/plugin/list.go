package plugin

import (
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

func newListCommand(o *Options) *cobra.Command {
	var allNamespaces bool
	var selector string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List Ats: when they run or ran, phase, result, exit code, and why one did not succeed",
		Example: `  kubectl at list
  kubectl at list -A
  kubectl at list -l team=data -o wide`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "List the Ats of every namespace.")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "Label selector, e.g. -l team=data.")
	pf := newPrintFlags(cmd, "", true)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkPrintFlags(pf, "wide"); err != nil {
			return err
		}
		sel, err := labels.Parse(selector)
		if err != nil {
			return fmt.Errorf("-l %q: %w", selector, err)
		}
		s, err := o.session()
		if err != nil {
			return err
		}
		namespace := s.namespace
		if allNamespaces {
			namespace = ""
		}
		list, err := s.Ats.List(cmd.Context(), namespace, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return s.apiError(fmt.Errorf("listing ats: %w", err), "")
		}
		if len(list.Items) == 0 && outputFormat(pf) == "" {
			if allNamespaces {
				_, err = fmt.Fprintln(s.ErrOut, "No Ats found.")
			} else {
				_, err = fmt.Fprintf(s.ErrOut, "No Ats found in namespace %s.\n", s.namespace)
			}
			return err
		}
		return s.printAts(pf, list.Items, allNamespaces, false)
	}
	return cmd
}

func newGetCommand(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get NAME...",
		Short: "Show Ats as list does, or as YAML or JSON with -o",
		Example: `  kubectl at get migrate
  kubectl at get migrate -o yaml
  kubectl at get migrate -o jsonpath='{.status.result}'`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeAtNames(o),
	}
	pf := newPrintFlags(cmd, "", true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkPrintFlags(pf, "wide"); err != nil {
			return err
		}
		s, err := o.session()
		if err != nil {
			return err
		}
		ats := make([]cnatv1alpha1.At, 0, len(args))
		for _, arg := range args {
			a, err := s.getAt(cmd, arg)
			if err != nil {
				return err
			}
			ats = append(ats, *a)
		}
		return s.printAts(pf, ats, false, len(args) == 1)
	}
	return cmd
}

// getAt reads the At that arg names.
func (s *session) getAt(cmd *cobra.Command, arg string) (*cnatv1alpha1.At, error) {
	name, err := atName(arg)
	if err != nil {
		return nil, err
	}
	a, err := s.Ats.Get(cmd.Context(), s.namespace, name)
	if err != nil {
		return nil, s.apiError(err, name)
	}
	return a, nil
}

// printAts prints the table (-o wide: more columns), or what -o asks for:
// one At as itself when single, else a List, as kubectl get does.
func (s *session) printAts(pf *genericclioptions.PrintFlags, ats []cnatv1alpha1.At, allNamespaces, single bool) error {
	switch outputFormat(pf) {
	case "", "wide":
		return PrintTable(s.Out, ats, s.Now(), allNamespaces, outputFormat(pf) == "wide")
	}
	p, err := pf.ToPrinter()
	if err != nil {
		return err
	}
	gvk := cnatv1alpha1.GroupVersion.WithKind("At")
	for i := range ats {
		ats[i].SetGroupVersionKind(gvk)
	}
	if single || outputFormat(pf) == "name" { // the name printer takes no typed lists
		for i := range ats {
			if err := p.PrintObj(&ats[i], s.Out); err != nil {
				return err
			}
		}
		return nil
	}
	return p.PrintObj(&cnatv1alpha1.AtList{Items: ats}, s.Out)
}
