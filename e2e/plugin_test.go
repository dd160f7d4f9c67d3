package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/e2e/cluster"
	"github.com/programming-kubernetes/cnat/internal/plugin"
)

var (
	buildPluginOnce sync.Once
	pluginPath      string // the directory holding kubectl-at, put first on PATH
	errBuildPlugin  error
)

// buildPlugin runs `make plugin` once: the test uses what a user builds.
func buildPlugin(t *testing.T) string {
	t.Helper()
	buildPluginOnce.Do(func() {
		root, err := filepath.Abs("..")
		if err != nil {
			errBuildPlugin = err
			return
		}
		cmd := exec.Command("make", "-C", root, "plugin")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			errBuildPlugin = fmt.Errorf("make plugin: %w", err)
			return
		}
		pluginPath = filepath.Join(root, "bin")
	})
	if errBuildPlugin != nil {
		t.Fatal(errBuildPlugin)
	}
	return pluginPath
}

type result struct {
	stdout, stderr string
	code           int
}

// kubectlAt runs `kubectl at ARGS...` in the feature's namespace: through
// kubectl's plugin lookup, with the freshly built kubectl-at first on PATH.
func kubectlAt(ctx context.Context, t *testing.T, cfg *envconf.Config, args ...string) result {
	t.Helper()
	bin := buildPlugin(t)
	full := append([]string{"at", "--kubeconfig", cfg.KubeconfigFile(), "-n", namespaceOf(ctx)}, args...)
	cmd := exec.CommandContext(ctx, "kubectl", full...)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("kubectl %s: %v", strings.Join(full, " "), err)
	}
	t.Logf("$ kubectl at %s\n%s%s(exit %d)", strings.Join(args, " "), r.stdout, r.stderr, r.code)
	return r
}

func (r result) expect(t *testing.T, code int, stdout string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stdout, stdout) {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and stdout containing %q", r.code, r.stdout, r.stderr, code, stdout)
	}
}

func TestKubectlAt(t *testing.T) {
	var rerunName string
	f := feature("kubectl at: create, wait, logs, rerun, list", "plugin").
		Assess("create runs the command; wait exits 0; logs prints its output", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			kubectlAt(ctx, t, cfg, "create", "hi", "--in", "0s", "--", "echo", "hi").expect(t, 0, "at/hi created, runs at ")
			kubectlAt(ctx, t, cfg, "wait", "hi", "--timeout", "2m").expect(t, 0, "at/hi: Succeeded, exit code 0")
			if r := kubectlAt(ctx, t, cfg, "logs", "hi"); r.code != 0 || r.stdout != "hi\n" {
				t.Errorf("logs: exit %d, stdout %q; want hi", r.code, r.stdout)
			}
			return ctx
		}).
		Assess("a failing command's exit code comes back from wait", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			kubectlAt(ctx, t, cfg, "create", "fails", "--in", "0s", "--", "echo failing >&2; exit 3").expect(t, 0, "at/fails created")
			kubectlAt(ctx, t, cfg, "wait", "fails", "--timeout", "2m").expect(t, 3, "at/fails: Failed, exit code 3")
			return ctx
		}).
		Assess("rerun runs the spec a second time, under a new name", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			r := kubectlAt(ctx, t, cfg, "rerun", "hi", "-o", "name")
			r.expect(t, 0, "at.cnat.programming-kubernetes.info/hi-")
			full := strings.TrimSpace(r.stdout)
			rerunName = strings.TrimPrefix(full, "at.cnat.programming-kubernetes.info/")
			kubectlAt(ctx, t, cfg, "wait", full, "--timeout", "2m").expect(t, 0, "at/"+rerunName+": Succeeded")
			if r := kubectlAt(ctx, t, cfg, "logs", rerunName); r.stdout != "hi\n" {
				t.Errorf("the rerun's logs: %q, want hi", r.stdout)
			}
			var first, second cnatv1alpha1.At
			res := cfg.Client().Resources(namespaceOf(ctx))
			if err := res.Get(ctx, "hi", namespaceOf(ctx), &first); err != nil {
				t.Fatal(err)
			}
			if err := res.Get(ctx, rerunName, namespaceOf(ctx), &second); err != nil {
				t.Fatal(err)
			}
			if second.Spec.Command != first.Spec.Command || second.Status.PodName == first.Status.PodName ||
				second.Annotations[plugin.RerunOfAnnotation] != "hi" {
				t.Errorf("rerun %s: command %q pod %s annotations %v; first: command %q pod %s",
					second.Name, second.Spec.Command, second.Status.PodName, second.Annotations, first.Spec.Command, first.Status.PodName)
			}
			return ctx
		}).
		Assess("list shows all three, with result, exit code and reason", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			r := kubectlAt(ctx, t, cfg, "list")
			rows := map[string][]string{}
			for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
				fields := strings.Fields(line)
				rows[fields[0]] = fields
			}
			// NAME SCHEDULE PHASE RESULT EXIT FINISHED [REASON]; a relative
			// time is one word ("now") or two ("3s ago"), so PHASE is found by value.
			for name, want := range map[string]string{"hi": "DONE Succeeded 0", "fails": "DONE Failed 3", rerunName: "DONE Succeeded 0"} {
				row := rows[name]
				phase := slices.Index(row, "DONE")
				if phase < 0 || len(row) < phase+3 || strings.Join(row[phase:phase+3], " ") != want {
					t.Errorf("list row of %s: %q, want %q", name, row, want)
				}
			}
			if row := rows["fails"]; len(row) == 0 || row[len(row)-1] != cnatv1alpha1.ReasonPodFailed {
				t.Errorf("list row of fails: %q, want the reason %s", row, cnatv1alpha1.ReasonPodFailed)
			}
			return ctx
		}).
		Assess("logs -f waits for a run that has not started, then streams it", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			kubectlAt(ctx, t, cfg, "create", "slow", "--in", "3s", "--", "echo one; sleep 2; echo two").expect(t, 0, "at/slow created")
			if r := kubectlAt(ctx, t, cfg, "logs", "-f", "slow"); r.code != 0 || r.stdout != "one\ntwo\n" {
				t.Errorf("logs -f: exit %d, stdout %q; want one, two", r.code, r.stdout)
			}
			return ctx
		}).
		Assess("wait gives up after --timeout with its own exit code", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			kubectlAt(ctx, t, cfg, "create", "later", "--in", "1h", "--", "true").expect(t, 0, "at/later created")
			start := time.Now()
			r := kubectlAt(ctx, t, cfg, "wait", "later", "--timeout", "2s")
			if r.code != plugin.ExitTimeout || !strings.Contains(r.stderr, "timed out after 2s") || time.Since(start) > 20*time.Second {
				t.Errorf("wait --timeout 2s: exit %d after %s, stderr %q; want %d", r.code, time.Since(start), r.stderr, plugin.ExitTimeout)
			}
			kubectlAt(ctx, t, cfg, "wait", "nope").expect(t, plugin.ExitWaitError, "")
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// installCluster is a second, scratch kind cluster: the one-file install is
// proven where cnat has never been installed, and the shared cluster (its
// deployed manager, the Ats of other suites) is left alone.
const installCluster = "cnat-install"

// TestInstallYAML builds dist/install.yaml with KO_DOCKER_REPO=kind.local
// (make build-installer), applies it to a fresh kind cluster as the README
// tells online users to, and runs the seed's sample At to DONE there.
func TestInstallYAML(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// kind writes the scratch cluster's context here, not into the user's
	// kubeconfig, whose current context others rely on.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	run := func(t *testing.T, ctx context.Context, env []string, name string, args ...string) string {
		t.Helper()
		start := time.Now()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = root
		cmd.Env = append(append(os.Environ(), "KIND_CLUSTER_NAME="+installCluster, "KUBECONFIG="+kubeconfig,
			"PATH="+filepath.Join(root, "bin")+string(os.PathListSeparator)+os.Getenv("PATH")), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
		}
		t.Logf("%s %s (%s)", name, strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
		return out.String()
	}
	kubectl := func(t *testing.T, ctx context.Context, args ...string) string {
		t.Helper()
		if args[0] == "at" { // kubectl takes no flags before a plugin's name
			return run(t, ctx, nil, "kubectl", append([]string{"at", "--kubeconfig", kubeconfig}, args[1:]...)...)
		}
		return run(t, ctx, nil, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	}
	f := features.New("dist/install.yaml installs cnat on a fresh cluster").WithLabel("area", "install").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			buildPlugin(t)
			run(t, ctx, nil, filepath.Join(root, "hack", "cluster.sh"), "up")
			return ctx
		}).
		Assess("make build-installer renders one file with the image resolved", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			run(t, ctx, []string{"KO_DOCKER_REPO=kind.local"}, "make", "build-installer")
			out, err := os.ReadFile(filepath.Join(root, "dist", "install.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"kind: CustomResourceDefinition", "kind: ClusterRole", "kind: Deployment", "image: kind.local/"} {
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("dist/install.yaml lacks %q", want)
				}
			}
			return ctx
		}).
		Assess("kubectl apply --server-side installs the operator", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			kubectl(t, ctx, "apply", "--server-side", "-f", filepath.Join(root, "dist", "install.yaml"))
			kubectl(t, ctx, "-n", managerNamespace, "rollout", "status", "deployment/"+managerDeployment, "--timeout=180s")
			return ctx
		}).
		Assess("the seed's sample At runs to DONE, Succeeded", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			// Its schedule (2026-02-10) has passed: it runs at once.
			kubectl(t, ctx, "apply", "-f", filepath.Join(root, "config", "samples", "cnat_v1alpha1_at.yaml"))
			if out := kubectl(t, ctx, "at", "wait", "demo", "--timeout", "2m"); !strings.Contains(out, "at/demo: Succeeded") {
				t.Errorf("kubectl at wait demo: %q", out)
			}
			if out := kubectl(t, ctx, "at", "logs", "demo"); out != "Hello Kubernetes\n" {
				t.Errorf("kubectl at logs demo: %q", out)
			}
			return ctx
		}).
		Teardown(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			if t.Failed() {
				dest := filepath.Join(envOr("ARTIFACTS", filepath.Join(root, "_artifacts")), "kind-logs-"+installCluster)
				scratch := cluster.FromEnv(kindCluster.ConfigFile)
				scratch.Name = installCluster
				if err := scratch.ExportLogs(dest); err != nil {
					t.Logf("exporting the logs of cluster %s: %v", installCluster, err)
				}
			}
			run(t, ctx, nil, filepath.Join(root, "hack", "cluster.sh"), "down")
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
