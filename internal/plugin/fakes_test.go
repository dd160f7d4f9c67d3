package plugin

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	fakediscovery "k8s.io/client-go/discovery/fake"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/plugin -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./internal/plugin -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

var atsGVR = cnatv1alpha1.GroupVersion.WithResource("ats")

// fakeAts is an AtInterface over client-go's object tracker. Each watch it
// opens is also sent on watches, so a test knows when a wait is watching.
type fakeAts struct {
	tracker  clienttesting.ObjectTracker
	watches  chan watch.Interface
	creates  int
	notFound bool // answer NotFound to everything, as a cluster without the CRD does
}

func newFakeAts(objs ...runtime.Object) *fakeAts {
	f := &fakeAts{
		tracker: clienttesting.NewObjectTracker(Scheme, serializer.NewCodecFactory(Scheme).UniversalDecoder()),
		watches: make(chan watch.Interface, 10),
	}
	for _, o := range objs {
		if err := f.tracker.Add(o); err != nil {
			panic(err)
		}
	}
	return f
}

func (f *fakeAts) crdMissing() error {
	if f.notFound {
		return apierrors.NewNotFound(atsGVR.GroupResource(), "")
	}
	return nil
}

func (f *fakeAts) Get(_ context.Context, namespace, name string) (*cnatv1alpha1.At, error) {
	if err := f.crdMissing(); err != nil {
		return nil, err
	}
	o, err := f.tracker.Get(atsGVR, namespace, name)
	if err != nil {
		return nil, err
	}
	return o.(*cnatv1alpha1.At), nil
}

func (f *fakeAts) List(_ context.Context, namespace string, _ metav1.ListOptions) (*cnatv1alpha1.AtList, error) {
	if err := f.crdMissing(); err != nil {
		return nil, err
	}
	o, err := f.tracker.List(atsGVR, cnatv1alpha1.GroupVersion.WithKind("At"), namespace)
	if err != nil {
		return nil, err
	}
	return o.(*cnatv1alpha1.AtList), nil
}

func (f *fakeAts) Create(_ context.Context, at *cnatv1alpha1.At, opts metav1.CreateOptions) (*cnatv1alpha1.At, error) {
	if err := f.crdMissing(); err != nil {
		return nil, err
	}
	f.creates++
	if len(opts.DryRun) > 0 {
		return at.DeepCopy(), nil
	}
	created := at.DeepCopy()
	created.UID = types.UID("uid-" + at.Name)
	if err := f.tracker.Create(atsGVR, created, at.Namespace); err != nil {
		return nil, err
	}
	return created, nil
}

func (f *fakeAts) Watch(_ context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	if opts.SendInitialEvents != nil {
		// The informer then falls back to list and watch, as with an API
		// server without streaming lists.
		return nil, errors.New("streaming lists are not supported by this fake")
	}
	w, err := f.tracker.Watch(atsGVR, namespace)
	if err == nil {
		f.watches <- w
	}
	return w, err
}

// env is a plugin wired to fakes, with captured output and a fixed clock.
type env struct {
	ats    *fakeAts
	core   *k8sfake.Clientset
	out    bytes.Buffer
	errOut bytes.Buffer
	now    time.Time
}

func newEnv(t *testing.T, objs ...runtime.Object) *env {
	t.Helper()
	// No kubeconfig of the machine running the tests takes part.
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	// --in writes the schedule in the machine's zone: pin it.
	local := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = local })
	var ats, pods []runtime.Object
	for _, o := range objs {
		if _, isPod := o.(*corev1.Pod); isPod {
			pods = append(pods, o)
		} else {
			ats = append(ats, o)
		}
	}
	e := &env{ats: newFakeAts(ats...), core: k8sfake.NewClientset(pods...), now: testNow}
	e.core.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: cnatv1alpha1.GroupVersion.String(),
		APIResources: []metav1.APIResource{{Name: "ats", Namespaced: true, Kind: "At"}},
	}}
	return e
}

// uninstall makes the fake cluster one without cnat's CRD.
func (e *env) uninstall() {
	e.ats.notFound = true
	e.core.Discovery().(*fakediscovery.FakeDiscovery).Resources = nil
}

// run runs `kubectl at args...` in namespace "team" and returns its exit code.
func (e *env) run(ctx context.Context, args ...string) int {
	e.out.Reset()
	e.errOut.Reset()
	o := NewOptions(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &e.out, ErrOut: &e.errOut})
	o.Now = func() time.Time { return e.now }
	o.NameSuffix = func() string { return "x7k2p" }
	o.NewClients = func(*Options) (*Clients, error) {
		return &Clients{Ats: e.ats, Core: e.core.CoreV1(), Discovery: e.core.Discovery()}, nil
	}
	cmd := NewCommand(o, "v0.0.0-test")
	cmd.SetArgs(append([]string{"-n", "team"}, args...))
	return Run(ctx, cmd, &e.errOut)
}

// testNow is the tests' clock: 2026-11-29T21:10:00Z.
var testNow = time.Date(2026, 11, 29, 21, 10, 0, 0, time.UTC)
