package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

type plugin struct {
	Kind string `json:"kind"`
	Spec struct {
		Version   string `json:"version"`
		Platforms []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

// TestRenderTheRealTemplate fills plugins/at.yaml in for every platform the
// release builds and checks what krew reads from it.
func TestRenderTheRealTemplate(t *testing.T) {
	tmpl, err := os.ReadFile("../../plugins/at.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var sumsText strings.Builder
	want := map[string]string{}
	for i, p := range []string{"linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64", "windows_amd64", "windows_arm64"} {
		sum := strings.Repeat(fmt.Sprintf("%x", i+1), 64)
		file := "kubectl-at_v1.2.3_" + p + ".tar.gz"
		fmt.Fprintf(&sumsText, "%s  %s\n", sum, file)
		want[p] = sum
	}
	sums, err := readChecksums(strings.NewReader(sumsText.String()))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Render(string(tmpl), "v1.2.3", sums)
	if err != nil {
		t.Fatal(err)
	}
	var m plugin
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if m.Kind != "Plugin" || m.Spec.Version != "v1.2.3" || len(m.Spec.Platforms) != len(want) {
		t.Fatalf("kind %q, version %q, %d platforms", m.Kind, m.Spec.Version, len(m.Spec.Platforms))
	}
	for _, p := range m.Spec.Platforms {
		key := p.Selector.MatchLabels["os"] + "_" + p.Selector.MatchLabels["arch"]
		wantURI := "https://github.com/programming-kubernetes/cnat/releases/download/v1.2.3/kubectl-at_v1.2.3_" + key + ".tar.gz"
		if p.URI != wantURI || p.SHA256 != want[key] {
			t.Errorf("%s: uri %s sha256 %s; want %s %s", key, p.URI, p.SHA256, wantURI, want[key])
		}
		wantBin := "kubectl-at"
		if p.Selector.MatchLabels["os"] == "windows" {
			wantBin += ".exe"
		}
		if p.Bin != wantBin {
			t.Errorf("%s: bin %q, want %q", key, p.Bin, wantBin)
		}
	}
	if strings.Contains(out, "{{") {
		t.Errorf("unrendered template action left:\n%s", out)
	}
}

func TestRenderFailsWithoutAChecksum(t *testing.T) {
	_, err := Render(`x: {{ addURIAndSha "https://h/{{ .TagName }}/a.tar.gz" .TagName }}`, "v1", map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "no checksum for a.tar.gz") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadChecksumsRejectsGarbage(t *testing.T) {
	if _, err := readChecksums(strings.NewReader("nothex  file.tar.gz\n")); err == nil {
		t.Fatal("accepted a line without a SHA-256")
	}
	sums, err := readChecksums(strings.NewReader(strings.Repeat("a", 64) + " *dist/x.tar.gz\n\n"))
	if err != nil || sums["x.tar.gz"] != strings.Repeat("a", 64) {
		t.Fatalf("sums %v, err %v", sums, err)
	}
}
