// Package plugin is `kubectl at`, a kubectl plugin for cnat's At: create one
// from a terminal or a script, list and get them as a table a person reads
// at a glance, read a run's output, wait for it with the command's exit code,
// and run one again. cmd/kubectl-at is its main package.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// InstallHint is where an error about a missing CRD sends the user.
const InstallHint = "is cnat installed? Install it with: kubectl apply --server-side -f " +
	"https://github.com/programming-kubernetes/cnat/releases/latest/download/install.yaml " +
	"(see https://github.com/programming-kubernetes/cnat#install)"

// Scheme knows the At: the At client encodes and decodes with it, and the
// printers set apiVersion and kind from it.
var Scheme = runtime.NewScheme()

func init() {
	if err := cnatv1alpha1.AddToScheme(Scheme); err != nil {
		panic(err)
	}
}

// Clients are what the commands talk to the cluster with; tests replace them
// with fakes.
type Clients struct {
	Ats AtInterface
	// Core finds an At's pod, watches it start and streams its log.
	Core typedcorev1.PodsGetter
	// Discovery tells "no such At" from "no At API at all" (cnat not installed).
	Discovery discovery.ServerResourcesInterface
}

// Options hold what every subcommand shares.
type Options struct {
	genericiooptions.IOStreams
	ConfigFlags *genericclioptions.ConfigFlags
	// Now is the clock: relative times in tables, --in and --at.
	Now func() time.Time
	// NewClients connects to the cluster; tests replace it.
	NewClients func(*Options) (*Clients, error)
	// NameSuffix makes the random part of a rerun's name; tests replace it.
	NameSuffix func() string
}

// ExitError ends the process with Code. Err, when set, is printed first.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Main runs kubectl-at with the process's arguments and returns its exit code.
func Main(version string) int {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	cmd := NewCommand(NewOptions(streams), version)
	return Run(context.Background(), cmd, streams.ErrOut)
}

// Run executes cmd and turns its error into an exit code and a message on
// errOut, as kubectl does ("error: ...", exit 1), except for an ExitError.
func Run(ctx context.Context, cmd *cobra.Command, errOut io.Writer) int {
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := 1
	var exit *ExitError
	if errors.As(err, &exit) {
		code = exit.Code
		if exit.Err == nil {
			return code
		}
	}
	fmt.Fprintln(errOut, "error: "+err.Error())
	return code
}

// NewOptions are the defaults: the kubeconfig flags, the real clock and clients.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	return &Options{
		IOStreams:   streams,
		ConfigFlags: genericclioptions.NewConfigFlags(true),
		Now:         time.Now,
		NewClients:  realClients,
		NameSuffix:  randomSuffix,
	}
}

// NewCommand is `kubectl at` with its subcommands.
func NewCommand(o *Options, version string) *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-at",
		Short: "Run a command once, at an instant, on Kubernetes (cnat's At)",
		Long: `kubectl at creates and follows cnat Ats: one-shot commands that the cnat
operator runs in a pod at a given instant.

  kubectl at create migrate --in 0s -- ./migrate --to v42
  kubectl at wait migrate        # exits with the command's exit code
  kubectl at logs migrate
  kubectl at list`,
		SilenceErrors: true, // Run prints errors the way kubectl does
		SilenceUsage:  true,
		// kubectl runs plugins as "kubectl at ...": say so in usage lines.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl at"},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help' for usage", err, c.CommandPath())
	})
	o.ConfigFlags.AddFlags(root.PersistentFlags())
	root.SetIn(o.In)
	root.SetOut(o.Out)
	root.SetErr(o.ErrOut)
	root.AddCommand(
		newCreateCommand(o),
		newListCommand(o),
		newGetCommand(o),
		newLogsCommand(o),
		newWaitCommand(o),
		newRerunCommand(o),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version of kubectl-at",
			Args:  cobra.NoArgs,
			Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "kubectl-at", version) },
		},
	)
	return root
}

func realClients(o *Options) (*Clients, error) {
	cfg, err := o.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "kubectl-at/" + rest.DefaultKubernetesUserAgent()
	// Deprecation and admission warnings as kubectl prints them.
	cfg.WarningHandler = rest.NewWarningWriter(o.ErrOut, rest.WarningWriterOptions{Deduplicate: true})
	ats, err := NewAtClient(cfg)
	if err != nil {
		return nil, err
	}
	core, err := typedcorev1.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the pod client: %w", err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the discovery client: %w", err)
	}
	return &Clients{Ats: ats, Core: core, Discovery: disco}, nil
}

// session is what a subcommand works with once the flags are read.
type session struct {
	*Options
	*Clients
	namespace string
}

func (o *Options) session() (*session, error) { return o.sessionFor(true) }

// sessionFor connects to the cluster only when connect is set: a client dry
// run needs the namespace, not a server.
func (o *Options) sessionFor(connect bool) (*session, error) {
	ns, _, err := o.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	s := &session{Options: o, Clients: &Clients{}, namespace: ns}
	if connect {
		if s.Clients, err = o.NewClients(o); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// apiError explains the errors a user can act on: the At does not exist, or
// the cluster does not serve Ats at all (a NotFound either way; discovery
// tells them apart).
func (s *session) apiError(err error, name string) error {
	if err == nil || !apierrors.IsNotFound(err) {
		return err
	}
	if !s.servesAts() {
		return fmt.Errorf("this cluster does not serve %s ats (%w); %s", cnatv1alpha1.GroupVersion, err, InstallHint)
	}
	if name != "" {
		return fmt.Errorf("at %q not found in namespace %q", name, s.namespace)
	}
	return err
}

// servesAts asks discovery whether the At resource exists; when discovery
// itself fails it says yes, leaving the original error to speak.
func (s *session) servesAts() bool {
	resources, err := s.Discovery.ServerResourcesForGroupVersion(cnatv1alpha1.GroupVersion.String())
	if err != nil {
		return !apierrors.IsNotFound(err)
	}
	for _, r := range resources.APIResources {
		if r.Name == atResource {
			return true
		}
	}
	return false
}

// atName accepts NAME and the forms `-o name` prints (at/NAME,
// at.cnat.programming-kubernetes.info/NAME), so that
// `kubectl at wait $(kubectl at rerun x -o name)` works.
func atName(arg string) (string, error) {
	kind, name, found := strings.Cut(arg, "/")
	if !found {
		return arg, nil
	}
	switch kind {
	case "at", "ats", "at." + cnatv1alpha1.GroupVersion.Group, "ats." + cnatv1alpha1.GroupVersion.Group:
		if name != "" {
			return name, nil
		}
	}
	return "", fmt.Errorf("%q is not an At: give NAME or at/NAME", arg)
}

// completeAtNames offers the names of the Ats in the namespace.
func completeAtNames(o *Options) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 && cmd.Name() != "get" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		s, err := o.session()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		list, err := s.Ats.List(cmd.Context(), s.namespace, metav1.ListOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		names := make([]string, 0, len(list.Items))
		for _, a := range list.Items {
			names = append(names, a.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
