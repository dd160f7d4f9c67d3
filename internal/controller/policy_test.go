package controller

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// applyFile creates every object in path, in namespace when it is not "".
func applyFile(ctx context.Context, t *testing.T, c client.Client, path, namespace string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decoding %s: %v", path, err)
		}
		if namespace != "" {
			obj.(client.Object).SetNamespace(namespace)
		}
		if err := c.Create(ctx, obj.(client.Object)); err != nil {
			t.Fatalf("creating %s from %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, path, err)
		}
	}
}

// The optional ValidatingAdmissionPolicy sample (config/policy) is admission
// in the API server, so envtest owns it. It gets an API server of its own:
// the policy binds cluster-wide, and the shared one's tests use other images.
func TestAllowedImagesPolicySample(t *testing.T) {
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting a second envtest: %v", err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	}()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	applyFile(ctx, t, c, filepath.Join("..", "..", "config", "policy", "allowed_images.yaml"), "")
	ns := newNamespace(t, c)
	newAt := func(name, image string) *cnatv1alpha1.At {
		obj := &cnatv1alpha1.At{Spec: cnatv1alpha1.AtSpec{Schedule: "2030-01-01T00:00:00Z", Command: "true", Image: image}}
		obj.Name, obj.Namespace = name, ns
		return obj
	}

	// The API server loads a new policy and its binding asynchronously; until
	// then it admits everything. Retry (deleting what slipped through) until
	// the policy speaks.
	const wantMessage = "spec.image busybox:1.37 is not allowed: Ats may only run images under example.com/approved/"
	eventually(t, 30*time.Second, "the policy to refuse busybox:1.37", func(ctx context.Context) (bool, error) {
		err := c.Create(ctx, newAt("outside", "busybox:1.37"))
		if err == nil {
			return false, c.Delete(ctx, newAt("outside", ""))
		}
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), wantMessage) {
			return false, err
		}
		return true, nil
	})
	for name, image := range map[string]string{"inside": "example.com/approved/busybox:1.37", "default-image": ""} {
		if err := c.Create(ctx, newAt(name, image)); err != nil {
			t.Errorf("At %s (image %q): %v, want it admitted", name, image, err)
		}
	}
}
