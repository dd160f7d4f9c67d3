package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// The namespaced install is deployed next to the default one, into a
// namespace of its own and with its cluster-scoped names prefixed, so that
// neither overwrites the other. While it runs, the cluster-wide manager is
// scaled to zero: it would otherwise run the Ats in the watched namespace
// too, and "the namespaced manager ran it" could not be told from "the
// default one did". It is scaled back when the feature ends, however it ends.
const namespacedPrefix = "e2e-nsd-"

// renderNamespaced writes config/namespaced, moved into namespace ns, to a
// file: the CRD left out (shared with the default install; deleting it
// afterwards would delete every At), names prefixed, and offline the run
// image as --default-image.
func renderNamespaced(t *testing.T, ns string) string {
	t.Helper()
	dir := t.TempDir()
	base, err := filepath.Abs(filepath.Join("..", "config", "namespaced"))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, base) // kustomize refuses absolute paths
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf(`namespace: %s
namePrefix: %s
resources: [%s]
patches:
- patch: |-
    $patch: delete
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: %s}
`, ns, namespacedPrefix, rel, crdName)
	if kindCluster.RunImage != "" {
		k += fmt.Sprintf(`- target: {kind: Deployment}
  patch: '[{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--default-image=%s"}]'
`, kindCluster.RunImage)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("kubectl", "kustomize", dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	file := filepath.Join(dir, "rendered.yaml")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// runFromRepo runs a command from the repository root against the test cluster.
func runFromRepo(ctx context.Context, cfg *envconf.Config, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cfg.KubeconfigFile())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out.String())
	}
	return nil
}

// scaleManager sets the default install's replicas and waits until its
// pods are gone (0) or it is Available again.
func scaleManager(ctx context.Context, cfg *envconf.Config, replicas int32) error {
	r := cfg.Client().Resources(managerNamespace)
	var d appsv1.Deployment
	if err := r.Get(ctx, managerDeployment, managerNamespace, &d); err != nil {
		return err
	}
	d.Spec.Replicas = ptr.To(replicas)
	if err := r.Update(ctx, &d); err != nil {
		return fmt.Errorf("scaling %s to %d: %w", managerDeployment, replicas, err)
	}
	if replicas > 0 {
		return wait.For(conditions.New(r).DeploymentAvailable(managerDeployment, managerNamespace),
			wait.WithTimeout(3*time.Minute), wait.WithContext(ctx))
	}
	return wait.For(func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		err := r.List(ctx, &pods, resources.WithLabelSelector("control-plane=controller-manager"))
		return err == nil && len(pods.Items) == 0, err
	}, wait.WithTimeout(2*time.Minute), wait.WithContext(ctx))
}

func TestNamespacedInstall(t *testing.T) {
	installNS := namespacedPrefix + rand.String(5)
	deployment := namespacedPrefix + managerDeployment
	sa := namespacedPrefix + managerServiceAccount
	var watched, unwatched *cnatv1alpha1.At
	f := feature("the namespaced install runs Ats in its own namespace only, holding Roles there", "security").
		Setup(func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ko := os.Getenv("KO")
			if ko == "" {
				t.Fatal("KO is not set: run the e2e tests with `make e2e` (or export the output of `hack/cluster.sh env`)")
			}
			rendered := renderNamespaced(t, installNS)
			// Cleanups run last first: uninstall, then bring the default manager back.
			t.Cleanup(func() {
				if err := scaleManager(context.WithoutCancel(ctx), cfg, 1); err != nil {
					t.Errorf("restoring the default manager: %v", err)
				}
			})
			t.Cleanup(func() {
				if err := runFromRepo(context.WithoutCancel(ctx), cfg, "kubectl", "delete", "--ignore-not-found", "--wait", "-f", rendered); err != nil {
					t.Errorf("uninstalling the namespaced install: %v", err)
				}
			})
			if err := scaleManager(ctx, cfg, 0); err != nil {
				t.Fatal(err)
			}
			if err := runFromRepo(ctx, cfg, ko, "apply", "-f", rendered); err != nil {
				t.Fatal(err)
			}
			err := wait.For(conditions.New(cfg.Client().Resources()).DeploymentAvailable(deployment, installNS),
				wait.WithTimeout(3*time.Minute), wait.WithContext(ctx))
			if err != nil {
				t.Fatalf("deployment %s/%s not Available: %v", installNS, deployment, err)
			}
			return ctx
		}).
		Assess("an At in the watched namespace runs", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			// First one outside, so that it has waited as long as the watched one took.
			ctx = createAt(ctx, t, cfg, time.Now(), "true")
			unwatched = atOf(ctx)
			watched = &cnatv1alpha1.At{
				ObjectMeta: metav1.ObjectMeta{Name: "watched", Namespace: installNS},
				Spec:       cnatv1alpha1.AtSpec{Schedule: time.Now().UTC().Format(time.RFC3339), Command: "true"},
			}
			if err := cfg.Client().Resources().Create(ctx, watched); err != nil {
				t.Fatal(err)
			}
			waitForDone(context.WithValue(ctx, atKey{}, watched), t, cfg, cnatv1alpha1.ResultSucceeded, "")
			return ctx
		}).
		Assess("an At in an unwatched namespace is untouched", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			var got cnatv1alpha1.At
			if err := cfg.Client().Resources().Get(ctx, unwatched.Name, unwatched.Namespace, &got); err != nil {
				t.Fatal(err)
			}
			if got.Status.Phase != "" {
				t.Errorf("At %s/%s outside the watched namespace has status %+v", got.Namespace, got.Name, got.Status)
			}
			if pods := podsOf(ctx, t, cfg, &got); len(pods) != 0 {
				t.Errorf("At %s/%s outside the watched namespace has pod %s", got.Namespace, got.Name, pods[0].Name)
			}
			return ctx
		}).
		Assess("its service account creates pods in its namespace only, and holds no ClusterRole for them", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			cs, subject := clientsetOf(t, cfg), saSubject(installNS, sa)
			for _, tc := range []struct {
				a    access
				want bool
			}{
				{access{"create", "", "pods", installNS}, true},
				{access{"create", "", "pods", namespaceOf(ctx)}, false},
				{access{"create", "", "pods", "default"}, false},
				{access{"list", "", "pods", ""}, false},
				{access{"list", cnatv1alpha1.GroupVersion.Group, "ats", ""}, false},
				{access{"update", cnatv1alpha1.GroupVersion.Group, "ats/status", namespaceOf(ctx)}, false},
				{access{"create", "authentication.k8s.io", "tokenreviews", ""}, true},
			} {
				if ok, err := allowed(ctx, cs, subject, tc.a); err != nil || ok != tc.want {
					t.Errorf("namespaced manager: %s allowed=%v (err %v), want %v", tc.a, ok, err, tc.want)
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
