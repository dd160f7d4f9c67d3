package main

import (
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	o, _, err := parseFlags([]string{"--watch-namespace=a,b", "--watch-namespace", "c", "--default-image=busybox:1.37"})
	if err != nil || strings.Join(o.watchNamespaces, ",") != "a,b,c" {
		t.Fatalf("valid flags: %+v, %v", o, err)
	}
	for args, want := range map[string]string{
		"--max-concurrent-reconciles=0": "--max-concurrent-reconciles",
		"--kube-api-qps=-1":             "--kube-api-qps",
		"--kube-api-burst=0":            "--kube-api-burst",
		"--default-image=":              "--default-image",
		"--watch-namespace=Bad_NS":      "not a namespace name",
		"--kube-api-qps=fast":           "invalid value",
	} {
		if _, _, err := parseFlags([]string{args}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want one naming %q", args, err, want)
		}
	}
}
