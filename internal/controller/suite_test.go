package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// k8sClient talks to the suite's API server, on which a manager runs the At
// controller with the CRD exactly as config/crd installs it.
var k8sClient client.Client

// restConfig reaches the suite's API server, for tests that build their own clients.
var restConfig *rest.Config

var scheme = runtime.NewScheme()

func TestMain(m *testing.M) {
	logFile, err := os.CreateTemp("", "cnat-envtest-*.log")
	if err != nil {
		panic(err)
	}
	fmt.Fprintln(os.Stderr, "manager log:", logFile.Name())
	logf.SetLogger(zap.New(zap.WriteTo(logFile), zap.UseDevMode(true)))
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cnatv1alpha1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: the integration tests need kube-apiserver and etcd. "+
			"Run them with `make test-unit`, which builds both (hack/build-binaries.sh envtest).")
		os.Exit(1)
	}
	env, c, stop, err := startEnvironment(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		os.Exit(1)
	}
	k8sClient, restConfig = c, env.Config
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: unmanagedNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, "creating namespace", unmanagedNamespace+":", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// startEnvironment starts kube-apiserver and etcd with the At CRD (crd, or the
// one in config/crd when nil) and a manager running the controller on them.
func startEnvironment(crd *apiextensionsv1.CustomResourceDefinition) (*envtest.Environment, client.Client, func(), error) {
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	if crd != nil {
		env.CRDDirectoryPaths = nil
		env.CRDs = []*apiextensionsv1.CustomResourceDefinition{crd}
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, nil, err
	}
	cacheOptions := CacheOptions(nil)
	// Tests that play a manager's life by hand (restarts, lost writes) keep
	// their Ats out of the suite's manager's sight.
	cacheOptions.DefaultFieldSelector = fields.OneTermNotEqualSelector("metadata.namespace", unmanagedNamespace)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   cacheOptions,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	reconciler := &AtReconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Clock:        clock.RealClock{},
		Recorder:     mgr.GetEventRecorder("cnat"),
		DefaultImage: "test-image:1",
	}
	// Tests start several managers in one process; controller names must
	// not be checked for uniqueness across them.
	skip := true
	if err := reconciler.SetupWithManager(mgr, crcontroller.Options{MaxConcurrentReconciles: 4, SkipNameValidation: &skip}); err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		return nil, nil, nil, fmt.Errorf("manager cache did not sync: %w", <-done)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}
	return env, c, stop, nil
}

// unmanagedNamespace is the namespace the suite's manager does not watch.
const unmanagedNamespace = "unmanaged"

// newNamespace gives each test its own namespace.
func newNamespace(t *testing.T, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "at-test-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// eventually polls check every 50 ms until it returns true, failing the test
// with what it last saw after the timeout.
func eventually(t *testing.T, timeout time.Duration, what string, check func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true,
		func(ctx context.Context) (bool, error) {
			ok, err := check(ctx)
			last = err
			return ok, nil
		})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
	}
}
