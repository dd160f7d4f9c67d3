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
	StartLag *lags `json:"start_lag"` // start-lag: the At's pod ADDED − its instant
	// StartLagTrials split each start-lag trial's time (manager, API server, watch).
	StartLagTrials  []startBreakdown `json:"start_lag_trials"`
	CronJobStartLag *lags            `json:"cronjob_start_lag"` // cronjob: the CronJob's pod ADDED − the minute boundary
	APICost         *apiCost         `json:"api_cost"`          // api-cost, over the start-lag trials
	Burst           *burst           `json:"burst"`             // burst: N Ats at one instant
	DirectBurst     *podTimes        `json:"direct_burst"`      // burst: the same N pods created directly, the ceiling
	CronJobBurst    *podTimes        `json:"cronjob_burst"`     // burst with cronjob: N CronJobs on one minute boundary
	Memory          *memory          `json:"memory"`            // memory: the manager container's working set
	// The figures below are always present, each null until measured.
	BurstDone   burstDone      `json:"burst_done"` // burst: each of its bursts to the end
	Burst10k    burst10kResult `json:"burst10k"`   // burst10k: 10,000 Ats at one instant, pods that never run
	Finished    finishedResult `json:"finished"`   // finished: DONE Ats and their pods at rest
	WallSeconds float64        `json:"wall_s"`
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

// burst10kResult is B at 10,000 Ats whose pods never run (a scheduling gate).
type burst10kResult struct {
	N              int      `json:"n"`
	PendingInTime  bool     `json:"pending_in_time"`            // every At PENDING before T
	FirstPodS      *float64 `json:"burst10k_first_pod_s"`       // first pod ADDED − T
	LastPodS       *float64 `json:"burst10k_last_pod_s"`        // last pod ADDED − T
	PodsN          int      `json:"burst10k_pods_n"`            // pods seen (N unless the wait ran out)
	DirectLastPodS *float64 `json:"direct_burst10k_last_pod_s"` // the same pods created directly: last ADDED − first create
	DirectPodsN    int      `json:"direct_burst10k_pods_n"`
	// MemoryMiB is the peak of the manager's working set sampled every 2 s
	// from just before T until 10 s after the last pod.
	MemoryMiB       *float64 `json:"memory_burst10k_mib"`
	ManagerRestarts *int     `json:"manager_restarts"` // during the At burst; the scenario fails unless 0
}

// finishedResult is finished Ats at rest: Ats DONE, each with its succeeded
// pod, and Pods unrelated pods.
type finishedResult struct {
	Ats  int `json:"ats"`
	Pods int `json:"pods"`
	// MemoryMiB is the peak of the manager's working set once it has synced
	// (10 samples, 2 s apart), after the scale-up and again after the
	// restart: the larger of memory_finished_synced_mib and
	// memory_finished_restart_mib.
	MemoryMiB        *float64 `json:"memory_finished_mib"`
	SyncedMiB        *float64 `json:"memory_finished_synced_mib"`
	RestartMiB       *float64 `json:"memory_finished_restart_mib"`
	StartPeakMiB     *float64 `json:"memory_finished_start_peak_mib"` // the peak while it synced, after either start
	SetupS           *float64 `json:"setup_s"`                        // writing the Ats, their pods and the unrelated pods
	SyncedS          *float64 `json:"synced_s"`                       // from the scale-up until it settled
	RestartFirstPodS *float64 `json:"restart_first_pod_s"`            // a new At's pod ADDED − the manager pod's deletion
	RestartOldGoneS  *float64 `json:"restart_old_gone_s"`             // the old pod gone − its deletion
	ManagerRestarts  *int     `json:"manager_restarts"`               // container restarts over the scenario; it fails unless 0
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

func count(v *int) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprint(*v)
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
	bd, g, f := r.BurstDone, r.Burst10k, r.Finished
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
		{"burst10k size", count(ptrInt(r.Burst10k.N)), "", "", "10,000"},
		{"burst10k last pod after T", ptrFig(g.LastPodS).in("%.2f s"), "", "", "≤ 1.2× direct"},
		{"burst10k ceiling: last of the pods created directly", ptrFig(g.DirectLastPodS).in("%.2f s"), "", "", "reported"},
		{"burst10k last pod, cnat / direct", times2(ptrFig(g.LastPodS), ptrFig(g.DirectLastPodS)), "", "", "≤ 1.2×"},
		{"burst10k memory (peak)", ptrFig(g.MemoryMiB).in("%.1f MiB"), "", "", "reported"},
		{"burst10k manager restarts", count(g.ManagerRestarts), "", "", "0"},
		{"api-cost writes per run", of(r.APICost, func(c apiCost) float64 { return c.WritesPerRun }).in("%.2f"), "", "", "≤ 5 (the run finalizer costs one)"},
		{"api-cost reconciles per run", of(r.APICost, func(c apiCost) float64 { return c.ReconcilesPerRun }).in("%.2f"), "", "", "≤ 5"},
		{"memory, idle", of(mem.IdleMiB, mib).in("%.1f MiB"), "", "", "≤ 64 MiB"},
		{"memory, loaded", of(mem.LoadedMiB, mib).in("%.1f MiB"), "", "", "≤ 200 MiB"},
		{"memory, finished Ats at rest (synced, and after the restart)", ptrFig(f.MemoryMiB).in("%.1f MiB"), "", "", "≤ 200 MiB"},
		{"memory, finished Ats: start-up peak", ptrFig(f.StartPeakMiB).in("%.1f MiB"), "", "", "reported"},
		{"restart: a new At's pod after the manager pod's deletion", ptrFig(f.RestartFirstPodS).in("%.2f s"), "", "", "≤ 10 s"},
		{"finished: manager restarts", count(f.ManagerRestarts), "", "", "0"},
	} {
		fmt.Println("| " + strings.Join(row, " | ") + " |")
	}
	if r.Burst != nil && r.Burst.Manager != nil {
		m := r.Burst.Manager
		fmt.Printf("\nburst inside the manager (means): %.0f ms in the workqueue, %.0f ms per reconcile; per request: "+
			"POST (pods, events) %.0f ms, PATCH (status) %.0f ms, client-side throttling %.1f ms.\n",
			m.QueueWaitMs, m.ReconcileMs, m.PostMs, m.PatchMs, m.ClientThrottleMs)
	}
	if worst := slowest(r.StartLagTrials); worst != nil {
		fmt.Printf("slowest start-lag trial (%s): %.1f ms = %.1f ms until the manager sent the create "+
			"(timer, workqueue, reads) + %.1f ms for the create + %.1f ms until this program's watch saw the pod.\n",
			worst.Trial, worst.LagMs, worst.WakeMs, worst.CreateMs, worst.WatchMs)
	}
	if r.Memory != nil {
		fmt.Printf("memory loaded = %d PENDING Ats + %d unrelated pods that never run.\n", mem.LoadedAts, mem.LoadedPods)
	}
	if bd.WaitS > 0 {
		fmt.Printf("burst to DONE: cnat from T, direct pods from the first create, CronJob pods from the boundary; each waited up to %.0f s.\n", bd.WaitS)
	}
	if f.Ats > 0 {
		fmt.Printf("finished = %d DONE Ats with their Succeeded pods + %d unrelated pods; at rest = the peak of 10 samples once synced "+
			"after the scale-up (%s) and again after the restart (%s); the start-up peak covers both syncs.\n",
			f.Ats, f.Pods, ptrFig(f.SyncedMiB).in("%.1f MiB"), ptrFig(f.RestartMiB).in("%.1f MiB"))
	}
	fmt.Printf("Wall time %.0f s.\n", r.WallSeconds)
}

func ptrInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
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
