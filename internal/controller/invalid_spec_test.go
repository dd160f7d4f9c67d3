package controller

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// crdWithoutValidation is the At CRD as someone might install it by hand:
// the same schema with every validation rule removed.
func crdWithoutValidation(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "cnat.programming-kubernetes.info_ats.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(raw, crd); err != nil {
		t.Fatal(err)
	}
	for i := range crd.Spec.Versions {
		stripValidation(crd.Spec.Versions[i].Schema.OpenAPIV3Schema)
	}
	return crd
}

func stripValidation(s *apiextensionsv1.JSONSchemaProps) {
	s.XValidations, s.Pattern, s.MinLength, s.MaxLength, s.Minimum, s.Enum = nil, "", nil, nil, nil, nil
	for name, p := range s.Properties {
		stripValidation(&p)
		s.Properties[name] = p
	}
}

func TestInvalidSpecDespiteAdmissionIsATerminalFailure(t *testing.T) {
	env, c, stop, err := startEnvironment(crdWithoutValidation(t))
	if err != nil {
		t.Fatalf("starting a second envtest: %v", err)
	}
	defer func() {
		stop()
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	}()
	ns := newNamespace(t, c)
	for name, spec := range map[string]cnatv1alpha1.AtSpec{
		"bad-schedule": {Schedule: "2026-02-30T10:00:00Z", Command: "echo hi"},
		"no-command":   {Schedule: time.Now().Format(time.RFC3339), Command: ""},
		"unknown-zone": {Schedule: "2026-02-10T20:35:00", TimeZone: "Mars/Olympus_Mons", Command: "echo hi"},
	} {
		obj := &cnatv1alpha1.At{Spec: spec}
		obj.Name, obj.Namespace = name, ns
		if err := c.Create(context.Background(), obj); err != nil {
			t.Fatalf("the CRD without validation refused %s: %v", name, err)
		}
		done := waitFor(t, c, obj, "DONE", inPhase(cnatv1alpha1.PhaseDone))
		if done.Status.Result != cnatv1alpha1.ResultFailed || done.Status.Reason != cnatv1alpha1.ReasonInvalidSpec {
			t.Errorf("%s: status = %+v, want Failed / InvalidSpec", name, done.Status)
		}
		waitForEvent(t, c, obj, string(cnatv1alpha1.ResultFailed))
		if pods := podsOf(t, c, obj); len(pods) != 0 {
			t.Errorf("%s: an invalid At created pod %s", name, pods[0].Name)
		}
	}
}
