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
		"--max-concurrent-reconciles=0":                    "--max-concurrent-reconciles",
		"--kube-api-qps=-1":                                "--kube-api-qps",
		"--kube-api-burst=0":                               "--kube-api-burst",
		"--default-image=":                                 "--default-image",
		"--watch-namespace=Bad_NS":                         "not a namespace name",
		"--kube-api-qps=fast":                              "invalid value",
		"--metrics-secure=false --metrics-cert-dir=/certs": "--metrics-cert-dir needs --metrics-secure",
	} {
		if _, _, err := parseFlags(strings.Fields(args)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want one naming %q", args, err, want)
		}
	}
}

// The secure endpoint itself (401, 403, 200) is proven in e2e/metrics_test.go;
// this pins which flags lead there.
func TestMetricsOptions(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		secure   bool
		bindAddr string
	}{
		{nil, true, ":8443"},
		{[]string{"--metrics-cert-dir=/certs"}, true, ":8443"},
		{[]string{"--metrics-secure=false", "--metrics-bind-address=:8080"}, false, ":8080"},
	} {
		o, _, err := parseFlags(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		m := metricsOptions(o)
		if m.SecureServing != tc.secure || (m.FilterProvider != nil) != tc.secure || m.BindAddress != tc.bindAddr ||
			m.CertDir != o.metricsCertDir {
			t.Errorf("%v: secure %v, filter %v, bind %q, cert dir %q; want secure and filter %v, bind %q, cert dir %q",
				tc.args, m.SecureServing, m.FilterProvider != nil, m.BindAddress, m.CertDir, tc.secure, tc.bindAddr, o.metricsCertDir)
		}
	}
}

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		want  int64
		error bool
	}{
		{"no container limit", nil, 0, false},
		{"the downward API's bytes", map[string]string{memoryLimitEnv: "268435456"}, 241591905, false},
		{"a quantity", map[string]string{memoryLimitEnv: "256Mi"}, 241591905, false},
		{"GOMEMLIMIT set by the user", map[string]string{memoryLimitEnv: "268435456", "GOMEMLIMIT": "100MiB"}, 0, false},
		{"garbage", map[string]string{memoryLimitEnv: "lots"}, 0, true},
		{"zero", map[string]string{memoryLimitEnv: "0"}, 0, true},
	} {
		got, err := memoryLimit(func(key string) string { return tc.env[key] })
		if got != tc.want || (err != nil) != tc.error {
			t.Errorf("%s: %d, %v; want %d, error %v", tc.name, got, err, tc.want, tc.error)
		}
	}
}
