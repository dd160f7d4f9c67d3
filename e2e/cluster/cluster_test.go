package cluster

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"golang.org/x/mod/modfile"
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
