package cluster

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"golang.org/x/mod/modfile"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// The kind library that creates the cluster and the kind module whose node
// image files hack/airgap/images.sh builds from must be one version:
// KIND_VERSION in hack/versions.env.
func TestKindLibraryIsThePinnedKind(t *testing.T) {
	env, err := os.ReadFile(filepath.Join("..", "..", "hack", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^KIND_VERSION=(\S+)$`).FindSubmatch(env)
	if m == nil {
		t.Fatal("hack/versions.env pins no KIND_VERSION")
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.ParseLax("go.mod", raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range mod.Require {
		if req.Mod.Path == "sigs.k8s.io/kind" {
			if req.Mod.Version != string(m[1]) {
				t.Errorf("go.mod requires sigs.k8s.io/kind %s, hack/versions.env pins KIND_VERSION=%s", req.Mod.Version, m[1])
			}
			return
		}
	}
	t.Error("go.mod does not require sigs.k8s.io/kind")
}

// NODES=N makes the project's config into one control plane and N-1
// workers, and a different N is a different config (the cluster is recreated).
func TestConfigAddsWorkers(t *testing.T) {
	hashes := map[string]int{}
	for _, n := range []int{1, 3} {
		c := &Cluster{ConfigFile: filepath.Join("..", "..", "hack", "kind-config.yaml"), Nodes: n}
		cfg, err := c.config()
		if err != nil {
			t.Fatal(err)
		}
		roles := map[v1alpha4.NodeRole]int{}
		for _, node := range cfg.Nodes {
			roles[node.Role]++
		}
		if roles[v1alpha4.ControlPlaneRole] != 1 || roles[v1alpha4.WorkerRole] != n-1 {
			t.Errorf("NODES=%d: roles %v, want 1 control plane and %d workers", n, roles, n-1)
		}
		hash, err := c.configHash()
		if err != nil {
			t.Fatal(err)
		}
		hashes[hash] = n
	}
	if len(hashes) != 2 {
		t.Errorf("NODES=1 and NODES=3 have one config hash: %v", hashes)
	}
}

func TestNodesFromEnv(t *testing.T) {
	for value, want := range map[string]int{"": 1, "3": 3, "0": 1, "-2": 1, "three": 1} {
		t.Setenv("NODES", value)
		if got := nodesFromEnv(); got != want {
			t.Errorf("NODES=%q: %d nodes, want %d", value, got, want)
		}
	}
}

func TestInside(t *testing.T) {
	for _, tc := range []struct {
		ip, cidr string
		want     bool
	}{
		{"10.244.8.3", "10.244.8.0/22", true},
		{"10.244.11.254", "10.244.8.0/22", true},
		{"10.244.0.2", "10.244.8.0/22", false},
		{"10.244.0.2", "", false},
		{"not-an-ip", "10.244.0.0/16", false},
	} {
		if got := inside(tc.ip, tc.cidr); got != tc.want {
			t.Errorf("inside(%q, %q) = %v, want %v", tc.ip, tc.cidr, got, tc.want)
		}
	}
}
