package e2e

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

type namespaceKey struct{}

// withNamespace gives a feature its own namespace, held to the restricted
// Pod Security level so that the At pods prove they comply.
func withNamespace(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   "e2e-" + rand.String(6),
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	if err := cfg.Client().Resources().Create(ctx, ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return context.WithValue(ctx, namespaceKey{}, ns.Name)
}

func deleteNamespace(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespaceOf(ctx)}}
	if err := cfg.Client().Resources().Delete(ctx, ns); err != nil {
		t.Errorf("deleting namespace %s: %v", ns.Name, err)
	}
	return ctx
}

func namespaceOf(ctx context.Context) string { return ctx.Value(namespaceKey{}).(string) }

type atKey struct{}

// createAt creates an At in the feature's namespace and keeps it in ctx for
// the following assessments.
func createAt(ctx context.Context, t *testing.T, cfg *envconf.Config, schedule time.Time, command string) context.Context {
	t.Helper()
	obj := &cnatv1alpha1.At{
		ObjectMeta: metav1.ObjectMeta{Name: "at-" + rand.String(5), Namespace: namespaceOf(ctx)},
		Spec:       cnatv1alpha1.AtSpec{Schedule: schedule.UTC().Format(time.RFC3339Nano), Command: command},
	}
	if err := cfg.Client().Resources().Create(ctx, obj); err != nil {
		t.Fatalf("creating At: %v", err)
	}
	return context.WithValue(ctx, atKey{}, obj)
}

func atOf(ctx context.Context) *cnatv1alpha1.At { return ctx.Value(atKey{}).(*cnatv1alpha1.At) }

// waitForAt polls the At (through NotFound) until match holds.
func waitForAt(ctx context.Context, t *testing.T, cfg *envconf.Config, what string, timeout time.Duration,
	match func(*cnatv1alpha1.At) bool) *cnatv1alpha1.At {
	t.Helper()
	obj := atOf(ctx).DeepCopy()
	err := wait.For(conditions.New(cfg.Client().Resources()).ResourceMatch(obj, func(o k8s.Object) bool {
		return match(o.(*cnatv1alpha1.At))
	}), wait.WithTimeout(timeout), wait.WithInterval(100*time.Millisecond), wait.WithContext(ctx))
	if err != nil {
		t.Fatalf("At %s never %s within %s; last status: %+v", obj.Name, what, timeout, obj.Status)
	}
	return obj
}

func phaseIs(phase cnatv1alpha1.Phase) func(*cnatv1alpha1.At) bool {
	return func(a *cnatv1alpha1.At) bool { return a.Status.Phase == phase }
}

func waitForDone(ctx context.Context, t *testing.T, cfg *envconf.Config, result cnatv1alpha1.Result, reason string) *cnatv1alpha1.At {
	t.Helper()
	done := waitForAt(ctx, t, cfg, "DONE", 2*time.Minute, phaseIs(cnatv1alpha1.PhaseDone))
	if done.Status.Result != result || (reason != "" && done.Status.Reason != reason) {
		t.Fatalf("DONE with %s/%s (%s), want %s/%s", done.Status.Result, done.Status.Reason, done.Status.Message, result, reason)
	}
	return done
}

// podsOf lists the pods that run the At, found by its UID label.
func podsOf(ctx context.Context, t *testing.T, cfg *envconf.Config, obj *cnatv1alpha1.At) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	err := cfg.Client().Resources(obj.Namespace).List(ctx, &pods,
		resources.WithLabelSelector(fmt.Sprintf("%s=%s", at.AtUIDLabel, obj.UID)))
	if err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	return pods.Items
}

func requireOnePod(ctx context.Context, t *testing.T, cfg *envconf.Config, obj *cnatv1alpha1.At) corev1.Pod {
	t.Helper()
	pods := podsOf(ctx, t, cfg, obj)
	if len(pods) != 1 {
		t.Fatalf("At %s has %d pods, want exactly 1", obj.Name, len(pods))
	}
	return pods[0]
}

func clientsetOf(t *testing.T, cfg *envconf.Config) *kubernetes.Clientset {
	t.Helper()
	clientset, err := kubernetes.NewForConfig(cfg.Client().RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return clientset
}

func podLog(ctx context.Context, t *testing.T, cfg *envconf.Config, pod corev1.Pod) string {
	t.Helper()
	stream, err := clientsetOf(t, cfg).CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: at.ContainerName}).Stream(ctx)
	if err != nil {
		t.Fatalf("reading the log of pod %s: %v", pod.Name, err)
	}
	defer func() { _ = stream.Close() }()
	out, err := io.ReadAll(stream)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
