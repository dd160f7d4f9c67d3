package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/programming-kubernetes/cnat/internal/at"
)

func TestScenariosByNameOrLetter(t *testing.T) {
	for _, tc := range []struct {
		list, want string // want: the scenarios, sorted, or the start of the error
	}{
		{"start-lag,api-cost", "api-cost start-lag"},
		{"AD", "api-cost start-lag"},
		{"ACDBE", "api-cost burst cronjob memory start-lag"},
		{"burst, E", "burst memory"},
		{"FG", "burst10k finished"},
		{"finished,burst10k,A", "burst10k finished start-lag"},
		{"H", "error: --scenarios: \"H\" is neither a scenario"},
		{"api-cost", "error: --scenarios: api-cost counts over the start-lag trials"},
		{"burts", "error: --scenarios: \"burts\" is neither a scenario"},
		{"", "error: --scenarios names no scenario"},
	} {
		on, err := parseScenarios(tc.list)
		got := strings.Join(slices.Sorted(maps.Keys(on)), " ")
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("parseScenarios(%q) = %q, want %q", tc.list, got, tc.want)
		}
	}
}

func parse(t *testing.T, text string) metrics {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return families
}

const scrapeBefore = `# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="at",result="success"} 10
controller_runtime_reconcile_total{controller="at",result="error"} 2
controller_runtime_reconcile_total{controller="other",result="success"} 100
# TYPE workqueue_queue_duration_seconds histogram
workqueue_queue_duration_seconds_bucket{name="at",le="+Inf"} 4
workqueue_queue_duration_seconds_sum{name="at"} 2
workqueue_queue_duration_seconds_count{name="at"} 4
`

const scrapeAfter = `# TYPE workqueue_queue_duration_seconds histogram
workqueue_queue_duration_seconds_bucket{name="at",le="+Inf"} 8
workqueue_queue_duration_seconds_sum{name="at"} 4
workqueue_queue_duration_seconds_count{name="at"} 8
workqueue_queue_duration_seconds_bucket{name="other",le="+Inf"} 1
workqueue_queue_duration_seconds_sum{name="other"} 60
workqueue_queue_duration_seconds_count{name="other"} 1
`

func TestMetricsAddUpTheMatchingSeries(t *testing.T) {
	before, after := parse(t, scrapeBefore), parse(t, scrapeAfter)
	if got := before.counter("controller_runtime_reconcile_total", map[string]string{"controller": "at"}); got != 12 {
		t.Errorf("reconciles of the at controller = %v, want 12 (both results, not the other controller)", got)
	}
	if got := before.counter("no_such_metric", nil); got != 0 {
		t.Errorf("a metric not produced yet = %v, want 0", got)
	}
	mean, err := meanBetween(before, after, "workqueue_queue_duration_seconds", map[string]string{"name": "at"})
	if err != nil || mean != 0.5 {
		t.Errorf("mean queue wait between the scrapes = %v, %v; want 0.5 (2 s over 4 observations)", mean, err)
	}
	if _, err := meanBetween(after, before, "workqueue_queue_duration_seconds", map[string]string{"name": "at"}); err == nil {
		t.Error("a histogram that went backwards (a restarted manager) gave a mean")
	}
}

func TestBenchJSONSaysNullForWhatWasNotMeasured(t *testing.T) {
	r := results{Burst: &burst{podTimes: podTimes{N: 3, FirstPodS: 1, LastPodS: 2}, DoneN: 2}, WallSeconds: 5}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(r); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"start_lag", "cronjob_start_lag", "api_cost", "direct_burst", "cronjob_burst", "memory"} {
		if v, ok := got[key]; !ok || v != nil {
			t.Errorf("%s = %v (present: %v), want null", key, v, ok)
		}
	}
	b := got["burst"].(map[string]any)
	if b["n"] != 3.0 || b["last_pod_s"] != 2.0 || b["all_done_s"] != nil || b["manager"] != nil {
		t.Errorf("burst = %v, want n 3, last_pod_s 2, all_done_s and manager null", b)
	}
	// The figures of issue 14 are named even when nothing measured them.
	for object, keys := range map[string][]string{
		"burst_done": {"burst_all_done_s", "direct_all_done_s", "cronjob_burst_all_done_s"},
		"burst10k":   {"burst10k_last_pod_s", "direct_burst10k_last_pod_s", "memory_burst10k_mib", "manager_restarts"},
		"finished":   {"memory_finished_mib", "memory_finished_start_peak_mib", "restart_first_pod_s", "manager_restarts"},
	} {
		figures, ok := got[object].(map[string]any)
		if !ok {
			t.Errorf("%s = %v, want an object", object, got[object])
			continue
		}
		for _, key := range keys {
			if v, ok := figures[key]; !ok || v != nil {
				t.Errorf("%s.%s = %v (present: %v), want null", object, key, v, ok)
			}
		}
	}
}

func TestOneShotFiresAtTheBoundaryOnlyInUTC(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		boundary time.Time
		want     string
	}{
		{time.Date(2026, 3, 7, 14, 5, 0, 0, time.UTC), "5 14 7 3 *"},
		{time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC), "59 23 31 12 *"},
		// Read in UTC whatever the boundary's zone: 00:30 in Berlin on 1 January is 23:30 UTC on 31 December.
		{time.Date(2027, 1, 1, 0, 30, 0, 0, berlin), "30 23 31 12 *"},
	} {
		if got := oneShot(tc.boundary); got != tc.want {
			t.Errorf("oneShot(%s) = %q, want %q", tc.boundary, got, tc.want)
		}
	}
}

func TestGatedAtsPodNeverRunsAndIsTheOperatorsPod(t *testing.T) {
	pod := at.PodFor(gatedAt("ns", "g", time.Now()), "busybox", time.Now())
	if len(pod.Spec.SchedulingGates) != 1 || pod.Spec.SchedulingGates[0].Name != neverGate {
		t.Errorf("scheduling gates = %v, want only %s", pod.Spec.SchedulingGates, neverGate)
	}
	if len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Name != at.ContainerName {
		t.Errorf("containers = %v, want the operator's %s alone", pod.Spec.Containers, at.ContainerName)
	}
	raw, err := json.Marshal(gatedAt("ns", "g", time.Now()).Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"containers":[]`) {
		t.Errorf("template = %s, want containers: [] (the schema requires the list)", raw)
	}
}

func histogramScrape(wakeSum, lagSum float64, count uint64) metrics {
	family := func(sum float64) *dto.MetricFamily {
		return &dto.MetricFamily{Metric: []*dto.Metric{{Histogram: &dto.Histogram{SampleSum: &sum, SampleCount: &count}}}}
	}
	return metrics{"cnat_start_wake_seconds": family(wakeSum), "cnat_start_lag_seconds": family(lagSum)}
}

// A trial's lag splits into the manager's wake, the create's round trip and
// the watch; the split needs exactly one start between the scrapes.
func TestBreakdownOf(t *testing.T) {
	before := histogramScrape(1.000, 1.010, 7)
	got, err := breakdownOf("single-7", 30*time.Millisecond, before, histogramScrape(1.020, 1.035, 8))
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	if !near(got.WakeMs, 20) || !near(got.CreateMs, 5) || !near(got.WatchMs, 5) || got.LagMs != 30 {
		t.Errorf("breakdown %+v, want wake 20, create 5, watch 5 of 30 ms", got)
	}
	if _, err := breakdownOf("single-7", time.Second, before, histogramScrape(1.2, 1.3, 9)); err == nil {
		t.Error("two starts between the scrapes gave a breakdown")
	}
	trials := []startBreakdown{{Trial: "a", LagMs: 5}, {Trial: "b", LagMs: 9}, {Trial: "c", LagMs: 7}}
	if worst := slowest(trials); worst == nil || worst.Trial != "b" {
		t.Errorf("slowest of %v: %v, want b", trials, worst)
	}
	if slowest(nil) != nil {
		t.Error("slowest of no trials is not nil")
	}
}
