// Command manager runs the cnat operator: the At controller, its metrics and
// health endpoints, and leader election.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"
	_ "time/tzdata" // the zone database for spec.timeZone: the manager's static image has no /usr/share/zoneinfo

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/controller"
)

// gracefulShutdown bounds how long the manager drains its reconciles on SIGTERM.
const gracefulShutdown = 10 * time.Second

// memoryLimitEnv holds the container's memory limit, filled in by the
// downward API (config/manager).
const memoryLimitEnv = "MEMORY_LIMIT"

type options struct {
	defaultImage            string
	leaderElect             bool
	metricsAddr             string
	metricsSecure           bool
	metricsCertDir          string
	probeAddr               string
	maxConcurrentReconciles int
	qps                     float64
	burst                   int
	watchNamespaces         namespaceList
}

// namespaceList is a repeatable, comma-separated flag.
type namespaceList []string

func (n *namespaceList) String() string { return strings.Join(*n, ",") }

func (n *namespaceList) Set(value string) error {
	for _, ns := range strings.Split(value, ",") {
		ns = strings.TrimSpace(ns)
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("%q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
		*n = append(*n, ns)
	}
	return nil
}

func parseFlags(args []string) (options, *zap.Options, error) {
	var o options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.StringVar(&o.defaultImage, "default-image", "busybox:1.37",
		"Image for Ats that set no spec.image; it must provide sh.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false,
		"Elect a leader so that only one replica acts at a time.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true,
		"Serve metrics over HTTPS to callers the API server authenticates (TokenReview) and authorizes for GET /metrics "+
			"(SubjectAccessReview). false serves plain HTTP to anyone who reaches the port: insecure, for `make run` only.")
	fs.StringVar(&o.metricsCertDir, "metrics-cert-dir", "",
		"Directory holding tls.crt and tls.key for the metrics endpoint (e.g. a mounted cert-manager Secret), "+
			"reloaded when they change. Default: a self-signed certificate generated at start-up.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", 16, "Ats reconciled in parallel.")
	fs.Float64Var(&o.qps, "kube-api-qps", 500, "Sustained requests per second to the API server.")
	fs.IntVar(&o.burst, "kube-api-burst", 1000, "Requests allowed in a burst above --kube-api-qps.")
	fs.Var(&o.watchNamespaces, "watch-namespace", "Namespace to watch; repeat it or separate with commas. Default: all.")
	zapOpts := &zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return o, nil, err
	}
	return o, zapOpts, o.validate()
}

func (o options) validate() error {
	var errs []error
	if o.defaultImage == "" || strings.ContainsAny(o.defaultImage, " \t\n") {
		errs = append(errs, fmt.Errorf("--default-image %q is not an image reference", o.defaultImage))
	}
	if o.maxConcurrentReconciles < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-reconciles must be at least 1, got %d", o.maxConcurrentReconciles))
	}
	if o.qps <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps must be positive, got %g", o.qps))
	}
	if o.metricsCertDir != "" && !o.metricsSecure {
		errs = append(errs, errors.New("--metrics-cert-dir needs --metrics-secure: plain HTTP uses no certificate"))
	}
	if o.burst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-burst must be at least 1, got %d", o.burst))
	}
	return errors.Join(errs...)
}

func main() {
	o, zapOpts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zapOpts)))
	if err := run(o); err != nil {
		ctrl.Log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

func run(o options) error {
	if limit, err := memoryLimit(os.Getenv); err != nil {
		ctrl.Log.Error(err, "leaving the Go memory limit unset")
	} else if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := cnatv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOptions(o),
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "cnat.programming-kubernetes.info",
		LeaderElectionReleaseOnCancel: true,
		// Within the pod's terminationGracePeriodSeconds (config/manager), so
		// that a rollout releases the lease instead of being killed holding it.
		GracefulShutdownTimeout: ptr.To(gracefulShutdown),
		Cache:                   controller.CacheOptions(o.watchNamespaces),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	reconciler := &controller.AtReconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Clock:        clock.RealClock{},
		Recorder:     mgr.GetEventRecorder("cnat"),
		DefaultImage: o.defaultImage,
	}
	if err := reconciler.SetupWithManager(mgr, controllerOptions(o)); err != nil {
		return fmt.Errorf("setting up the At controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.Info("starting manager", "defaultImage", o.defaultImage, "watchNamespaces", o.watchNamespaces.String(),
		"goMemoryLimitBytes", debug.SetMemoryLimit(-1))
	return mgr.Start(ctrl.SetupSignalHandler())
}

// memoryLimit is the Go runtime's soft memory limit for a container limit
// of memoryLimitEnv bytes: 90% of it, so that the garbage collector works
// harder as the heap nears the limit instead of the kernel killing the
// manager, which would then list every At again. 0 means leave it: when
// GOMEMLIMIT is set the runtime already honours it, and outside a pod
// (`make run`) memoryLimitEnv is unset. A container without a limit gets the
// node's allocatable memory from the downward API: a ceiling that never binds.
func memoryLimit(getenv func(string) string) (int64, error) {
	value := getenv(memoryLimitEnv)
	if getenv("GOMEMLIMIT") != "" || value == "" {
		return 0, nil
	}
	limit, err := resource.ParseQuantity(value)
	if err != nil || limit.Sign() <= 0 {
		return 0, fmt.Errorf("%s=%q is not a memory limit", memoryLimitEnv, value)
	}
	return limit.Value() / 10 * 9, nil
}

// metricsOptions serves /metrics as the kubebuilder scaffold does: HTTPS, and
// only to callers whose bearer token the API server accepts and who may GET
// the /metrics non-resource URL (the metrics-reader ClusterRole). The At pods
// run user code and can reach the manager's pod network; plain HTTP would
// hand them the cluster's scheduling activity.
func metricsOptions(o options) metricsserver.Options {
	if !o.metricsSecure {
		return metricsserver.Options{BindAddress: o.metricsAddr}
	}
	return metricsserver.Options{
		BindAddress:    o.metricsAddr,
		SecureServing:  true,
		FilterProvider: filters.WithAuthenticationAndAuthorization,
		CertDir:        o.metricsCertDir,
		// HTTP/1.1 only: HTTP/2's stream reset and rapid reset attacks
		// (CVE-2023-44487, CVE-2023-39325) cost the server more than the
		// client, and a scraper gains nothing from HTTP/2.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
}

func controllerOptions(o options) crcontroller.Options {
	return crcontroller.Options{MaxConcurrentReconciles: o.maxConcurrentReconciles}
}
