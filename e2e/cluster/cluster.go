// Package cluster is the project's kind cluster, defined once for both
// `make cluster` (hack/cluster.sh runs hack/kind-cluster) and the e2e tests'
// TestMain: made from hack/kind-config.yaml on the wanted node image, reused
// while healthy, recreated when its node image or config changed or its node
// restarted, and Ready before anyone uses it. Like kind's own create, Up is an
// ordered list of small steps, each safe to run again.
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kind "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindcmd "sigs.k8s.io/kind/pkg/cmd"
	kindexec "sigs.k8s.io/kind/pkg/exec"
	"sigs.k8s.io/yaml"
)

// The marks a node carries on its own filesystem, so that the next Up can
// tell the cluster it made from a stale or restarted one.
const (
	// configMark holds the hash of the kind config that made the node: a
	// changed config recreates the cluster the way a changed node image does.
	configMark = "/kind/cnat-kind-config.sha256"
	// bootMark lives on every node's tmpfs, with etcd's data (see
	// hack/kind-config.yaml): a node that Docker restarted comes back without
	// it, and with an empty etcd (no RBAC bindings, no workloads) or without
	// the routes to the other nodes' pods.
	bootMark = "/tmp/cnat-up-since-create"
)

// Cluster is the kind cluster and what it is made from.
type Cluster struct {
	Name       string        // KIND_CLUSTER_NAME, default cnat
	NodeImage  string        // KIND_NODE_IMAGE
	RunImage   string        // RUN_IMAGE: loaded into the node when set (offline)
	ConfigFile string        // hack/kind-config.yaml
	Nodes      int           // NODES, default 1: the control plane, and Nodes-1 workers
	Wait       time.Duration // for the node and coredns to be Ready

	provider *kind.Provider
	reused   bool // set by the first step: the existing cluster is healthy
}

// FromEnv is the cluster that `hack/cluster.sh env` describes, made from configFile.
func FromEnv(configFile string) *Cluster {
	return &Cluster{
		Name:       envOr("KIND_CLUSTER_NAME", "cnat"),
		NodeImage:  os.Getenv("KIND_NODE_IMAGE"),
		RunImage:   os.Getenv("RUN_IMAGE"),
		ConfigFile: configFile,
		Nodes:      nodesFromEnv(),
		Wait:       5 * time.Minute,
		provider:   kind.NewProvider(kind.ProviderWithDocker(), kind.ProviderWithLogger(kindcmd.NewLogger())),
	}
}

// nodesFromEnv is NODES, or 1 when it is unset or not a positive number.
func nodesFromEnv() int {
	n, err := strconv.Atoi(os.Getenv("NODES"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// Context is the kubeconfig context kind gives the cluster.
func (c *Cluster) Context() string { return "kind-" + c.Name }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
}

// Up makes the cluster ready for use, whatever state it is found in.
func (c *Cluster) Up(ctx context.Context) error {
	if c.NodeImage == "" {
		// Which node image is right (kind's own, or the one built offline) is
		// hack/cluster.sh's choice; guessing here would recreate a healthy
		// cluster on the wrong image.
		return errors.New("KIND_NODE_IMAGE is not set: run through make (cluster, e2e, test), " +
			"or export what hack/cluster.sh env prints: set -a; eval \"$(hack/cluster.sh env)\"; set +a")
	}
	start := time.Now()
	for _, step := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"check the existing cluster", c.removeUnlessHealthy},
		{"create the cluster", c.create},
		{"connect the nodes' pod networks", c.connectPodNetworks},
		{"wait for the nodes and coredns to be Ready", c.waitForNodeAndCoreDNS},
		{"load the run image", c.loadRunImage},
	} {
		stepStart := time.Now()
		logf("==> %s", step.name)
		if err := step.run(ctx); err != nil {
			return fmt.Errorf("cluster %s: %s: %w", c.Name, step.name, err)
		}
		logf("<== %s (%s)", step.name, time.Since(stepStart).Round(100*time.Millisecond))
	}
	logf("cluster %s ready in %s (kubectl context %s)", c.Name, time.Since(start).Round(time.Second), c.Context())
	return nil
}

// Down deletes the cluster (nothing when there is none).
func (c *Cluster) Down() error { return c.provider.Delete(c.Name, "") }

// Kubeconfig is a kubeconfig for this cluster alone.
func (c *Cluster) Kubeconfig() (string, error) { return c.provider.KubeConfig(c.Name, false) }

// ExportLogs writes the nodes' logs (kubelet, containerd, pods) under dir.
func (c *Cluster) ExportLogs(dir string) error { return c.provider.CollectLogs(c.Name, dir) }

func (c *Cluster) removeUnlessHealthy(ctx context.Context) error {
	names, err := c.provider.List()
	if err != nil {
		return err
	}
	if !slices.Contains(names, c.Name) {
		return nil
	}
	why, err := c.unhealthy(ctx)
	if err != nil {
		return err
	}
	if why == "" {
		logf("reusing cluster %s (node image %s)", c.Name, c.NodeImage)
		c.reused = true
		// As kind create does: kubectl --context kind-<name> works from here on.
		return c.provider.ExportKubeConfig(c.Name, "", false)
	}
	logf("cluster %s %s: recreating", c.Name, why)
	return c.Down()
}

// unhealthy says why the existing cluster cannot be reused, or "" when it can.
func (c *Cluster) unhealthy(ctx context.Context) (string, error) {
	all, err := c.provider.ListNodes(c.Name)
	if err != nil {
		return "", err
	}
	if len(all) != c.Nodes {
		return fmt.Sprintf("has %d nodes, not %d", len(all), c.Nodes), nil
	}
	node, err := c.node()
	if err != nil {
		return "has no usable node (" + err.Error() + ")", nil
	}
	image, _ := output(exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.Config.Image}} {{.State.Running}}", node.String()))
	config, _ := kindexec.Output(node.Command("cat", configMark))
	want, err := c.configHash()
	if err != nil {
		return "", err
	}
	if got := strings.TrimSpace(string(config)); image != c.NodeImage+" true" || got != want {
		return fmt.Sprintf("is stale or stopped (node: %s, config %s; want %s, config %s)",
			orUnknown(image), orUnknown(got), c.NodeImage, want), nil
	}
	for _, n := range all {
		if n.Command("test", "-e", bootMark).Run() != nil {
			return fmt.Sprintf("has a node (%s) that restarted since it was created", n), nil
		}
	}
	if err := c.ready(ctx); err != nil {
		return "does not answer (" + err.Error() + ")", nil
	}
	return "", nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func output(cmd *exec.Cmd) (string, error) {
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// config is the kind config: ConfigFile, plus Nodes-1 workers.
func (c *Cluster) config() (*v1alpha4.Cluster, error) {
	raw, err := os.ReadFile(c.ConfigFile)
	if err != nil {
		return nil, err
	}
	cfg := &v1alpha4.Cluster{}
	if err := yaml.UnmarshalStrict(raw, cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", c.ConfigFile, err)
	}
	for range c.Nodes - 1 {
		cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{Role: v1alpha4.WorkerRole})
	}
	return cfg, nil
}

// configHash is the first 12 hex digits of the kind config's SHA-256.
func (c *Cluster) configHash() (string, error) {
	cfg, err := c.config()
	if err != nil {
		return "", err
	}
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:12], nil
}

// node is the cluster's bootstrap control-plane node (the config makes one).
func (c *Cluster) node() (nodes.Node, error) {
	all, err := c.provider.ListNodes(c.Name)
	if err != nil {
		return nil, err
	}
	return nodeutils.BootstrapControlPlaneNode(all)
}

func (c *Cluster) create(context.Context) error {
	if c.reused {
		return nil
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	err = c.provider.Create(c.Name,
		kind.CreateWithNodeImage(c.NodeImage),
		kind.CreateWithV1Alpha4Config(cfg),
		kind.CreateWithDisplayUsage(false),
		kind.CreateWithDisplaySalutation(false))
	if err != nil {
		return err
	}
	hash, err := c.configHash()
	if err != nil {
		return err
	}
	node, err := c.node()
	if err != nil {
		return err
	}
	if err := node.Command("sh", "-c", fmt.Sprintf("echo %s >%s", hash, configMark)).Run(); err != nil {
		return err
	}
	all, err := c.provider.ListNodes(c.Name)
	if err != nil {
		return err
	}
	for _, n := range all {
		if err := n.Command("touch", bootMark).Run(); err != nil {
			return fmt.Errorf("node %s: %w", n, err)
		}
	}
	return nil
}

func (c *Cluster) clientset() (*kubernetes.Clientset, error) {
	raw, err := c.Kubeconfig()
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(raw))
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// ready asks the API server's /readyz.
func (c *Cluster) ready(ctx context.Context) error {
	cs, err := c.clientset()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

// waitUntil polls check every 2 s until it holds or c.Wait has passed. Early
// errors are expected (the API server starting; coredns' first x509 errors
// while kube-proxy has not written its rules) and retried, not fatal.
func (c *Cluster) waitUntil(ctx context.Context, what string, check func(context.Context, *kubernetes.Clientset) error) error {
	cs, err := c.clientset()
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, c.Wait, true, func(ctx context.Context) (bool, error) {
		last = check(ctx, cs)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%s not Ready after %s: %w", what, c.Wait, errors.Join(last, err))
	}
	return nil
}

// waitForNodeAndCoreDNS waits for the node and for coredns: until then, pods
// neither schedule nor resolve names.
func (c *Cluster) waitForNodeAndCoreDNS(ctx context.Context) error {
	return c.waitUntil(ctx, "node and coredns", func(ctx context.Context, cs *kubernetes.Clientset) error {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		coredns, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
		if err != nil {
			return err
		}
		if len(nodes.Items) == 0 || len(coredns.Items) == 0 {
			return fmt.Errorf("%d nodes and %d coredns pods so far", len(nodes.Items), len(coredns.Items))
		}
		ready := map[string]bool{}
		for _, n := range nodes.Items {
			ready["node "+n.Name] = slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
				return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
			})
		}
		for _, p := range coredns.Items {
			ready["pod "+p.Name] = slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
				return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
			})
		}
		return allReady(ready)
	})
}

// allReady names an object that is not Ready yet, if any.
func allReady(ready map[string]bool) error {
	for name, ok := range ready {
		if !ok {
			return fmt.Errorf("%s is not Ready yet", name)
		}
	}
	return nil
}

// loadRunImage puts RUN_IMAGE from the local Docker into every node's
// containerd, as `kind load docker-image` does, unless a node has it already.
func (c *Cluster) loadRunImage(ctx context.Context) error {
	if c.RunImage == "" {
		logf("no RUN_IMAGE: At pods pull the manager's default image")
		return nil
	}
	local, err := output(exec.CommandContext(ctx, "docker", "image", "inspect", "-f", "{{.Id}}", c.RunImage))
	if err != nil {
		return fmt.Errorf("run image %s is not in the local Docker: %w", c.RunImage, err)
	}
	all, err := c.provider.ListNodes(c.Name)
	if err != nil {
		return err
	}
	for _, node := range all {
		if have, err := nodeutils.ImageID(node, c.RunImage); err == nil && have == local {
			logf("node %s has %s already", node, c.RunImage)
			continue
		}
		err := kindexec.RunWithStdoutReader(kindexec.CommandContext(ctx, "docker", "save", c.RunImage), func(archive io.Reader) error {
			return nodeutils.LoadImageArchive(node, archive)
		})
		if err != nil {
			return fmt.Errorf("loading %s into node %s: %w", c.RunImage, node, err)
		}
	}
	return nil
}
