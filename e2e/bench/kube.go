package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/programming-kubernetes/cnat/e2e/internal/scrape"
)

type bench struct {
	o       options
	c       client.WithWatch
	cfg     *rest.Config
	results map[string]float64
}

func (b *bench) checkManager(ctx context.Context) error {
	if _, err := b.reconciles(ctx); err != nil {
		return fmt.Errorf("the manager's metrics do not answer (make deploy): %w", err)
	}
	return nil
}

func (b *bench) namespace(ctx context.Context, prefix string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := b.c.Create(ctx, ns); err != nil {
		return "", fmt.Errorf("creating namespace: %w", err)
	}
	return ns.Name, nil
}

// deleteNamespace deletes ns; with wait, until it is gone (so the next
// scenario starts on a quiet node), or 5 minutes have passed.
func (b *bench) deleteNamespace(ctx context.Context, name string, untilGone bool) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := b.c.Delete(ctx, ns); err != nil {
		fmt.Printf("deleting namespace %s: %v\n", name, err)
		return
	}
	if !untilGone {
		return
	}
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(b.c.Get(ctx, client.ObjectKeyFromObject(ns), ns)), nil
	})
	if err != nil {
		fmt.Printf("namespace %s not gone after 5 minutes; going on\n", name)
	}
}

// parallel runs create(0..n-1) on at most --workers goroutines and stops
// starting new ones at the first error.
func (b *bench) parallel(ctx context.Context, n int, create func(i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(b.o.workers)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return create(i) })
	}
	return g.Wait()
}

func runnerPod(image string) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: ptr.To(false),
		SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532)},
		Containers: []corev1.Container{{
			Name: "command", Image: image, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh", "-c", "true"},
		}},
	}
}

// cronJob fires every minute; the trial deletes it after its first pod.
func cronJob(ns, name, image string) *batchv1.CronJob {
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{trialLabel: name}}, Spec: runnerPod(image)}
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.CronJobSpec{
			Schedule:          "* * * * *",
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate:       batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template, BackoffLimit: ptr.To[int32](0)}},
		},
	}
}

func (b *bench) deleteCronJob(ctx context.Context, ns, name string) error {
	obj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if err := b.c.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting CronJob %s: %w", name, err)
	}
	return nil
}

// unschedulablePod asks for a node label no node has, so it stays Pending.
func unschedulablePod(ns, name, image string) *corev1.Pod {
	spec := runnerPod(image)
	spec.NodeSelector = map[string]string{"bench.cnat.programming-kubernetes.info/never": "true"}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec}
}

// managerMetrics is the manager's /metrics text, scraped over HTTPS with
// the token of a service account bound to metrics-reader.
func (b *bench) managerMetrics(ctx context.Context) (metricsText, error) {
	body, err := scrape.Manager(ctx, b.cfg)
	return metricsText(body), err
}

// metricsText is Prometheus text exposition.
type metricsText string

// sum adds up the samples of the series called name whose labels include
// every one of labels (each written as key="value"). A series the manager
// has not produced yet sums to zero.
func (m metricsText) sum(name string, labels ...string) (float64, error) {
	total := 0.0
	for sc := bufio.NewScanner(strings.NewReader(string(m))); sc.Scan(); {
		line := sc.Text()
		space := strings.LastIndexByte(line, ' ')
		if space < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		series, value := line[:space], line[space+1:]
		metric, labelSet, _ := strings.Cut(series, "{")
		if metric != name || !containsAll(labelSet, labels) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %q: %w", line, err)
		}
		total += v
	}
	return total, nil
}

func containsAll(labelSet string, labels []string) bool {
	for _, l := range labels {
		if !strings.Contains(labelSet, l) {
			return false
		}
	}
	return true
}

// reconciles is controller_runtime_reconcile_total of the At controller.
func (b *bench) reconciles(ctx context.Context) (float64, error) {
	m, err := b.managerMetrics(ctx)
	if err != nil {
		return 0, err
	}
	return m.sum("controller_runtime_reconcile_total", `controller="at"`)
}

// managerMemoryMiB is the manager container's working set, as the kubelet's
// CRI stats (the node's cgroup) report it.
func (b *bench) managerMemoryMiB(ctx context.Context) (float64, error) {
	id, err := exec.CommandContext(ctx, "docker", "exec", b.o.nodeContainer, "crictl", "ps", "--name", "^manager$", "-q").Output()
	if err != nil {
		return 0, fmt.Errorf("finding the manager container in node %s: %w", b.o.nodeContainer, err)
	}
	if len(bytes.TrimSpace(id)) == 0 {
		return 0, fmt.Errorf("no running manager container in node %s", b.o.nodeContainer)
	}
	out, err := exec.CommandContext(ctx, "docker", "exec", b.o.nodeContainer, "crictl", "stats", "-o", "json", "--id", strings.TrimSpace(strings.Fields(string(id))[0])).Output()
	if err != nil {
		return 0, fmt.Errorf("crictl stats: %w", err)
	}
	var stats struct {
		Stats []struct {
			Memory struct {
				WorkingSetBytes struct {
					Value json.Number `json:"value"`
				} `json:"workingSetBytes"`
			} `json:"memory"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(out, &stats); err != nil {
		return 0, fmt.Errorf("parsing crictl stats %q: %w", out, err)
	}
	if len(stats.Stats) == 0 {
		return 0, fmt.Errorf("crictl stats has no stats for the manager: %q", out)
	}
	bytesUsed, err := stats.Stats[0].Memory.WorkingSetBytes.Value.Float64()
	if err != nil {
		return 0, err
	}
	return bytesUsed / (1 << 20), nil
}

// sinceAll returns each time's distance from ref, sorted.
func sinceAll(times []time.Time, ref time.Time) []time.Duration {
	out := make([]time.Duration, len(times))
	for i, t := range times {
		out[i] = t.Sub(ref)
	}
	slices.Sort(out)
	return out
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (b *bench) lagStats(prefix string, lags []time.Duration) {
	slices.Sort(lags)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.results[prefix+"_trials"] = float64(len(lags))
	b.results[prefix+"_p50_ms"] = ms(percentile(lags, 0.50))
	b.results[prefix+"_p90_ms"] = ms(percentile(lags, 0.90))
	b.results[prefix+"_p99_ms"] = ms(percentile(lags, 0.99))
	b.results[prefix+"_max_ms"] = ms(lags[len(lags)-1])
}

// allDone is B's time to all DONE or, when the wait ran out, how many were.
func allDone(r map[string]float64) string {
	if t, ok := r["burst_all_done_s"]; ok {
		return fmt.Sprintf("%.1f s", t)
	}
	if n, ok := r["burst_done_n"]; ok {
		return fmt.Sprintf("%.0f of %.0f within the wait", n, r["burst_n"])
	}
	return "–"
}

func (b *bench) printTable() {
	r := b.results
	v := func(key, format string) string {
		if x, ok := r[key]; ok {
			return fmt.Sprintf(format, x)
		}
		return "–"
	}
	ratio := func(theirs, ours string) string {
		if r[ours] > 0 && r[theirs] > 0 {
			return fmt.Sprintf("%.1f×", r[theirs]/r[ours])
		}
		return "–"
	}
	fmt.Println()
	fmt.Println("| figure | cnat | CronJob | CronJob / cnat | goal |")
	fmt.Println("|---|---|---|---|---|")
	for _, row := range [][]string{
		{"A start lag p50", v("single_p50_ms", "%.1f ms"), v("cronjob_single_p50_ms", "%.1f ms"), ratio("cronjob_single_p50_ms", "single_p50_ms"), "≤ 20 ms, ≥ 5× lower"},
		{"A start lag p90", v("single_p90_ms", "%.1f ms"), v("cronjob_single_p90_ms", "%.1f ms"), ratio("cronjob_single_p90_ms", "single_p90_ms"), ""},
		{"A start lag p99", v("single_p99_ms", "%.1f ms"), v("cronjob_single_p99_ms", "%.1f ms"), ratio("cronjob_single_p99_ms", "single_p99_ms"), "≤ 100 ms"},
		{"A start lag max", v("single_max_ms", "%.1f ms"), v("cronjob_single_max_ms", "%.1f ms"), "", ""},
		{"B burst size", v("burst_n", "%.0f"), v("cronjob_burst_n", "%.0f"), "", "1,000"},
		{"B first pod after T", v("burst_first_pod_s", "%.2f s"), v("cronjob_burst_first_pod_s", "%.2f s"), "", ""},
		{"B last pod after T", v("burst_last_pod_s", "%.2f s"), v("cronjob_burst_last_pod_s", "%.2f s"), ratio("cronjob_burst_last_pod_s", "burst_last_pod_s"), "≤ 10 s, ≥ 5× sooner"},
		{"B pod lag p50 / p99", v("burst_p50_pod_s", "%.2f s") + " / " + v("burst_p99_pod_s", "%.2f s"), "", "", ""},
		{"B all DONE after T", allDone(r), "", "", "reported"},
		{"B ceiling: the N pods created directly", v("direct_burst_last_pod_s", "%.2f s"), "", "", "reported"},
		{"D writes per run", v("writes_per_run", "%.2f"), "", "", "≤ 4"},
		{"D reconciles per run", v("reconciles_per_run", "%.2f"), "", "", "≤ 4"},
		{"E manager memory, idle", v("memory_idle_mib", "%.1f MiB"), "", "", "≤ 64 MiB"},
		{"E manager memory, loaded", v("memory_loaded_mib", "%.1f MiB"), "", "", "≤ 200 MiB"},
	} {
		fmt.Println("| " + strings.Join(row, " | ") + " |")
	}
	fmt.Printf("\nB inside the manager (means): %s in the workqueue, %s per reconcile; per request: POST (pods, events) %s, PATCH (status) %s, client-side throttling %s.\n",
		v("burst_mean_queue_wait_ms", "%.0f ms"), v("burst_mean_reconcile_ms", "%.0f ms"), v("burst_mean_post_ms", "%.0f ms"),
		v("burst_mean_patch_ms", "%.0f ms"), v("burst_mean_client_throttle_ms", "%.1f ms"))
	fmt.Printf("E loaded = %s PENDING Ats + %s unrelated pods that never run. Wall time %s.\n",
		v("memory_loaded_ats", "%.0f"), v("memory_loaded_pods", "%.0f"), v("wall_s", "%.0f s"))
}
