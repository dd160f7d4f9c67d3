package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// results is bench.json. A scenario that did not run, or a figure it could
// not measure, is null: a reader can tell "not measured" from zero.
type results struct {
	StartLag        *lags     `json:"start_lag"`         // start-lag: the At's pod ADDED − its instant
	CronJobStartLag *lags     `json:"cronjob_start_lag"` // cronjob: the CronJob's pod ADDED − the minute boundary
	APICost         *apiCost  `json:"api_cost"`          // api-cost, over the start-lag trials
	Burst           *burst    `json:"burst"`             // burst: N Ats at one instant
	DirectBurst     *podTimes `json:"direct_burst"`      // burst: the same N pods created directly, the ceiling
	CronJobBurst    *podTimes `json:"cronjob_burst"`     // burst with cronjob: N CronJobs on one minute boundary
	Memory          *memory   `json:"memory"`            // memory: the manager container's working set
	// The figures below are always present, each null until measured.
	BurstDone   burstDone `json:"burst_done"` // burst: each of its bursts to the end
	WallSeconds float64   `json:"wall_s"`
}

// burstDone times B's bursts to the end, each from its own reference: the
// Ats' instant T, the direct burst's first create, the CronJobs' minute
// boundary. Null when the wait (wait_s, --burst-done-wait) ran out; the
// counts say how far each got.
type burstDone struct {
	WaitS                float64  `json:"wait_s"`
	BurstAllDoneS        *float64 `json:"burst_all_done_s"` // every At DONE − T (burst.all_done_s, again)
	BurstDoneN           int      `json:"burst_done_n"`
	DirectAllDoneS       *float64 `json:"direct_all_done_s"` // every direct pod Succeeded − the first create
	DirectDoneN          int      `json:"direct_done_n"`
	CronJobBurstAllDoneS *float64 `json:"cronjob_burst_all_done_s"` // every CronJob pod Succeeded − the boundary
	CronJobBurstDoneN    int      `json:"cronjob_burst_done_n"`
}

type apiCost struct {
	WritesPerRun     float64 `json:"writes_per_run"`     // the At's MODIFIED events, its pod's creation and release
	ReconcilesPerRun float64 `json:"reconciles_per_run"` // controller_runtime_reconcile_total
}

// podTimes are when the first and the last of N pods appeared, in seconds
// after the instant they were due (or, for the direct burst, after the first create).
type podTimes struct {
	N         int     `json:"n"`
	FirstPodS float64 `json:"first_pod_s"`
	LastPodS  float64 `json:"last_pod_s"`
}

type burst struct {
	podTimes
	P50PodS float64 `json:"p50_pod_s"`
	P99PodS float64 `json:"p99_pod_s"`
	// DoneN Ats were DONE within --burst-done-wait; AllDoneS is null unless all were.
	DoneN    int      `json:"done_n"`
	AllDoneS *float64 `json:"all_done_s"`
	// Manager is where the manager's time went, from its own metrics (means in
	// ms); null when the scrapes failed.
	Manager *burstBreakdown `json:"manager"`
}

type burstBreakdown struct {
	QueueWaitMs      float64 `json:"queue_wait_ms"`
	ReconcileMs      float64 `json:"reconcile_ms"`
	PostMs           float64 `json:"post_ms"`  // POST: pods and events
	PatchMs          float64 `json:"patch_ms"` // PATCH: status
	ClientThrottleMs float64 `json:"client_throttle_ms"`
}

type memory struct {
	IdleMiB     *float64 `json:"idle_mib"`
	LoadedMiB   *float64 `json:"loaded_mib"` // the peak of 5 samples, 2 s apart
	LoadedAts   int      `json:"loaded_ats"`
	LoadedPods  int      `json:"loaded_pods"`
	PendingAllS *float64 `json:"pending_all_s"` // from the first create to every At PENDING
}

func (r *results) writeJSON(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "bench.json")
	if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	abs, _ := filepath.Abs(path)
	fmt.Println("\nbench.json:", abs)
	return nil
}

// figure is a measured value, or nothing (printed as "–").
type figure struct {
	ok bool
	v  float64
}

// of picks a value out of what a scenario measured, if it measured it.
func of[T any](p *T, pick func(T) float64) figure {
	if p == nil {
		return figure{}
	}
	return figure{true, pick(*p)}
}

func (f figure) in(format string) string {
	if !f.ok {
		return "–"
	}
	return fmt.Sprintf(format, f.v)
}

// ratio is how many times theirs is ours.
func ratio(theirs, ours figure) string {
	if !theirs.ok || !ours.ok || theirs.v <= 0 || ours.v <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f×", theirs.v/ours.v)
}

// times2 is how many times the ceiling ours is: cnat against the direct pods.
func times2(ours, ceiling figure) string {
	if !ours.ok || !ceiling.ok || ceiling.v <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", ours.v/ceiling.v)
}

// ptrFig is a figure from an optional value.
func ptrFig(v *float64) figure {
	return of(v, func(v float64) float64 { return v })
}

// doneIn is a time to all done, or how many were done when the wait ran out.
func doneIn(v *float64, n, of int) string {
	switch {
	case v != nil:
		return fmt.Sprintf("%.1f s", *v)
	case n == 0:
		return "–"
	default:
		return fmt.Sprintf("%d of %d within the wait", n, of)
	}
}

func (r *results) printTable() {
	a, c := r.StartLag, r.CronJobStartLag
	p50 := func(l lags) float64 { return l.P50 }
	p90 := func(l lags) float64 { return l.P90 }
	p99 := func(l lags) float64 { return l.P99 }
	maxLag := func(l lags) float64 { return l.Max }
	var b *podTimes
	if r.Burst != nil {
		b = &r.Burst.podTimes
	}
	cb, db := r.CronJobBurst, r.DirectBurst
	n := func(p podTimes) float64 { return float64(p.N) }
	first := func(p podTimes) float64 { return p.FirstPodS }
	last := func(p podTimes) float64 { return p.LastPodS }
	var mem memory
	if r.Memory != nil {
		mem = *r.Memory
	}
	mib := func(v float64) float64 { return v }
	bd := r.BurstDone
	directN, cronN := 0, 0
	if db != nil {
		directN = db.N
	}
	if cb != nil {
		cronN = cb.N
	}

	fmt.Println()
	fmt.Println("| figure | cnat | CronJob | CronJob / cnat | goal |")
	fmt.Println("|---|---|---|---|---|")
	for _, row := range [][]string{
		{"start-lag p50", of(a, p50).in("%.1f ms"), of(c, p50).in("%.1f ms"), ratio(of(c, p50), of(a, p50)), "≤ 20 ms, ≥ 5× lower"},
		{"start-lag p90", of(a, p90).in("%.1f ms"), of(c, p90).in("%.1f ms"), ratio(of(c, p90), of(a, p90)), ""},
		{"start-lag p99", of(a, p99).in("%.1f ms"), of(c, p99).in("%.1f ms"), ratio(of(c, p99), of(a, p99)), "≤ 100 ms"},
		{"start-lag max", of(a, maxLag).in("%.1f ms"), of(c, maxLag).in("%.1f ms"), "", ""},
		{"burst size", of(b, n).in("%.0f"), of(cb, n).in("%.0f"), "", "1,000"},
		{"burst first pod after T", of(b, first).in("%.2f s"), of(cb, first).in("%.2f s"), "", ""},
		{"burst last pod after T", of(b, last).in("%.2f s"), of(cb, last).in("%.2f s"), ratio(of(cb, last), of(b, last)), "≤ 10 s, ≥ 5× sooner"},
		{"burst pod lag p50 / p99", of(r.Burst, func(b burst) float64 { return b.P50PodS }).in("%.2f s") + " / " +
			of(r.Burst, func(b burst) float64 { return b.P99PodS }).in("%.2f s"), "", "", ""},
		{"burst all DONE after T (CronJob: all pods Succeeded)", allDone(r.Burst),
			doneIn(bd.CronJobBurstAllDoneS, bd.CronJobBurstDoneN, cronN), ratio(ptrFig(bd.CronJobBurstAllDoneS), ptrFig(bd.BurstAllDoneS)), "≤ 1.2× direct"},
		{"burst ceiling: the N pods created directly", of(db, last).in("%.2f s"), "", "", "reported"},
		{"burst ceiling: the direct pods all Succeeded", doneIn(bd.DirectAllDoneS, bd.DirectDoneN, directN), "", "", "reported"},
		{"burst all DONE, cnat / direct", times2(ptrFig(bd.BurstAllDoneS), ptrFig(bd.DirectAllDoneS)), "", "", "≤ 1.2×"},
		{"api-cost writes per run", of(r.APICost, func(c apiCost) float64 { return c.WritesPerRun }).in("%.2f"), "", "", "≤ 5 (the run finalizer costs one)"},
		{"api-cost reconciles per run", of(r.APICost, func(c apiCost) float64 { return c.ReconcilesPerRun }).in("%.2f"), "", "", "≤ 5"},
		{"memory, idle", of(mem.IdleMiB, mib).in("%.1f MiB"), "", "", "≤ 64 MiB"},
		{"memory, loaded", of(mem.LoadedMiB, mib).in("%.1f MiB"), "", "", "≤ 200 MiB"},
	} {
		fmt.Println("| " + strings.Join(row, " | ") + " |")
	}
	if r.Burst != nil && r.Burst.Manager != nil {
		m := r.Burst.Manager
		fmt.Printf("\nburst inside the manager (means): %.0f ms in the workqueue, %.0f ms per reconcile; per request: "+
			"POST (pods, events) %.0f ms, PATCH (status) %.0f ms, client-side throttling %.1f ms.\n",
			m.QueueWaitMs, m.ReconcileMs, m.PostMs, m.PatchMs, m.ClientThrottleMs)
	}
	if r.Memory != nil {
		fmt.Printf("memory loaded = %d PENDING Ats + %d unrelated pods that never run.\n", mem.LoadedAts, mem.LoadedPods)
	}
	if bd.WaitS > 0 {
		fmt.Printf("burst to DONE: cnat from T, direct pods from the first create, CronJob pods from the boundary; each waited up to %.0f s.\n", bd.WaitS)
	}
	fmt.Printf("Wall time %.0f s.\n", r.WallSeconds)
}

// allDone is the burst's time to all DONE or, when the wait ran out, how many were.
func allDone(b *burst) string {
	switch {
	case b == nil:
		return "–"
	case b.AllDoneS != nil:
		return fmt.Sprintf("%.1f s", *b.AllDoneS)
	default:
		return fmt.Sprintf("%d of %d within the wait", b.DoneN, b.N)
	}
}
