package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/e2e/internal/scrape"
	"github.com/programming-kubernetes/cnat/internal/at"
)

// getMetrics scrapes the deployed manager with token ("" sends none).
func getMetrics(ctx context.Context, t *testing.T, cfg *envconf.Config, token string) (int, string) {
	t.Helper()
	status, body, err := scrape.Get(ctx, cfg.Client().RESTConfig(), managerNamespace, scrape.ManagerSelector, scrape.MetricsPort, token)
	if err != nil {
		t.Fatalf("scraping the manager: %v", err)
	}
	return status, string(body)
}

func TestMetrics(t *testing.T) {
	const reader, nonReader = "metrics-reader", "not-a-metrics-reader"
	var binding string
	f := feature("the metrics endpoint serves only authenticated metrics readers", "observability").
		Assess("anonymous: 401", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			if status, body := getMetrics(ctx, t, cfg, ""); status != http.StatusUnauthorized {
				t.Errorf("anonymous scrape: %d %q, want 401", status, body)
			}
			return ctx
		}).
		Assess("a service account without metrics-reader: 403", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			token, err := scrape.Token(ctx, clientsetOf(t, cfg), namespaceOf(ctx), nonReader)
			if err != nil {
				t.Fatal(err)
			}
			if status, body := getMetrics(ctx, t, cfg, token); status != http.StatusForbidden {
				t.Errorf("scrape without metrics-reader: %d %q, want 403", status, body)
			}
			return ctx
		}).
		Assess("a service account bound to metrics-reader: 200 with cnat_start_lag_seconds and cnat_runs_total after a run",
			func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
				ctx = createAt(ctx, t, cfg, time.Now(), "true")
				waitForDone(ctx, t, cfg, cnatv1alpha1.ResultSucceeded, "")
				cs, ns := clientsetOf(t, cfg), namespaceOf(ctx)
				binding = "e2e-metrics-reader-" + ns
				if err := scrape.BindMetricsReader(ctx, cs, binding, ns, reader); err != nil {
					t.Fatal(err)
				}
				// The manager caches a denial for 30 s: scrape once RBAC allows.
				waitForAccess(ctx, t, cs, authorizationv1.SubjectAccessReviewSpec{
					User:                  serviceAccountUser(ns, reader),
					NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
				})
				token, err := scrape.Token(ctx, cs, ns, reader)
				if err != nil {
					t.Fatal(err)
				}
				status, body := getMetrics(ctx, t, cfg, token)
				if status != http.StatusOK {
					t.Fatalf("scrape with metrics-reader: %d %q, want 200", status, body)
				}
				for _, want := range []string{"cnat_start_lag_seconds_bucket", "cnat_start_lag_seconds_count", "cnat_start_wake_seconds_count", `cnat_runs_total{result="Succeeded"}`} {
					if !strings.Contains(body, want) {
						t.Errorf("metrics lack %s", want)
					}
				}
				return ctx
			}).
		Teardown(func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			if binding != "" {
				if err := clientsetOf(t, cfg).RbacV1().ClusterRoleBindings().Delete(ctx, binding, metav1.DeleteOptions{}); err != nil {
					t.Errorf("deleting ClusterRoleBinding %s: %v", binding, err)
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

func serviceAccountUser(namespace, name string) string {
	return fmt.Sprintf("system:serviceaccount:%s:%s", namespace, name)
}

// waitForAccess waits until RBAC allows spec (bindings and aggregated roles
// take effect a moment after they are written).
func waitForAccess(ctx context.Context, t *testing.T, cs kubernetes.Interface, spec authorizationv1.SubjectAccessReviewSpec) {
	t.Helper()
	var last string
	err := wait.For(func(ctx context.Context) (bool, error) {
		allowed, reason, err := accessReview(ctx, cs, spec)
		last = reason
		return allowed, err
	}, wait.WithTimeout(time.Minute), wait.WithInterval(200*time.Millisecond), wait.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s never allowed %+v %+v: %v (%s)", spec.User, spec.ResourceAttributes, spec.NonResourceAttributes, err, last)
	}
}

func accessReview(ctx context.Context, cs kubernetes.Interface, spec authorizationv1.SubjectAccessReviewSpec) (bool, string, error) {
	sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("SubjectAccessReview: %w", err)
	}
	return sar.Status.Allowed, sar.Status.Reason + sar.Status.EvaluationError, nil
}

// cniEnforcesNetworkPolicy says whether the cluster's CNI applies
// NetworkPolicy, and if not, why. The offline cluster (AIRGAP=1, see
// hack/cluster.sh) runs a static bridge CNI baked into its node image,
// because kindnetd's image cannot be pulled there; a bridge does not enforce
// NetworkPolicy. Online, kind's kindnetd does.
func cniEnforcesNetworkPolicy() (bool, string) {
	if os.Getenv("AIRGAP") == "1" {
		return false, "the offline kind cluster's static bridge CNI does not enforce NetworkPolicy"
	}
	return true, ""
}

func TestMetricsNetworkPolicy(t *testing.T) {
	f := feature("the NetworkPolicy admits scrapers from namespaces labelled metrics=enabled only", "observability").
		Assess("a pod in a namespace labelled metrics=enabled reaches the metrics port", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ns := namespaceOf(ctx)
			patch := []byte(`{"metadata":{"labels":{"metrics":"enabled"}}}`)
			if _, err := clientsetOf(t, cfg).CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			if out, reached := probeMetricsPort(ctx, t, cfg, ns); !reached {
				t.Errorf("a pod in %s (metrics=enabled) did not reach the manager's metrics port: %q", ns, out)
			}
			return ctx
		}).
		Assess("a pod in an unlabelled namespace cannot connect (skipped where the CNI does not enforce NetworkPolicy, as in the offline kind cluster)",
			func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
				ns := "e2e-unlabelled-" + rand.String(5)
				cs := clientsetOf(t, cfg)
				if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
					Name: ns, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
				}}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns, metav1.DeleteOptions{}) }()
				out, reached := probeMetricsPort(ctx, t, cfg, ns)
				if !reached {
					return ctx
				}
				if enforced, why := cniEnforcesNetworkPolicy(); !enforced {
					t.Skipf("a pod in unlabelled namespace %s reached the metrics port, as expected here: %s", ns, why)
				}
				t.Errorf("a pod in unlabelled namespace %s reached the manager's metrics port: %q", ns, out)
				return ctx
			}).Feature()
	testenv.Test(t, f)
}

// probeMetricsPort runs a pod in ns that sends plain HTTP to the manager's
// metrics Service and reports whether the manager answered. Go's TLS server
// answers plain HTTP with "Client sent an HTTP request to an HTTPS server":
// proof that the connection reached the manager and not something else.
func probeMetricsPort(ctx context.Context, t *testing.T, cfg *envconf.Config, ns string) (string, bool) {
	t.Helper()
	cs := clientsetOf(t, cfg)
	svc, err := cs.CoreV1().Services(managerNamespace).Get(ctx, managerDeployment+"-metrics", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	image := kindCluster.RunImage
	if image == "" {
		image = "busybox:1.37"
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-probe", Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: at.ContainerName, Image: image, // the container podLog reads ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c", fmt.Sprintf(`printf 'GET /metrics HTTP/1.0\r\n\r\n' | timeout 10 nc -w 5 %s %d 2>&1; true`,
					svc.Spec.ClusterIP, scrape.MetricsPort)},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the probe pod: %v", err)
	}
	err = wait.For(conditions.New(cfg.Client().Resources()).PodPhaseMatch(pod, corev1.PodSucceeded),
		wait.WithTimeout(time.Minute), wait.WithContext(ctx))
	if err != nil {
		t.Fatalf("probe pod in %s did not succeed: %v", ns, err)
	}
	out := podLog(ctx, t, cfg, *pod)
	return out, strings.Contains(out, "Client sent an HTTP request to an HTTPS server")
}
