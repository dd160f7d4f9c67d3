package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// singles runs A and C interleaved minute by minute: before each minute
// boundary it creates a few CronJobs, runs single-At trials until shortly
// before the boundary, then records when the CronJobs' pods appear.
func (b *bench) singles(ctx context.Context, runA, runC, runD bool) error {
	ns, pods, ats, err := b.watchedNamespace(ctx, "bench-single")
	if err != nil {
		return err
	}
	defer b.deleteNamespace(ctx, ns, false)
	reconcilesBefore, err := b.reconciles(ctx)
	if err != nil {
		return err
	}
	var atLags, cronLags []time.Duration
	writes := 0
	aLeft, cLeft := 0, 0
	if runA {
		aLeft = b.o.trials
	}
	if runC {
		cLeft = b.o.cronTrials
	}
	single := func() error {
		name := fmt.Sprintf("single-%d", len(atLags))
		before, err := b.scrape(ctx)
		if err != nil {
			return err
		}
		lag, w, err := b.singleAt(ctx, ns, name, pods, ats)
		if err != nil {
			return err
		}
		atLags, writes, aLeft = append(atLags, lag), writes+w, aLeft-1
		after, err := b.scrape(ctx)
		if err != nil {
			return err
		}
		trial, err := breakdownOf(name, lag, before, after)
		if err != nil {
			fmt.Printf("start-lag trial %s: no breakdown: %v\n", name, err)
			return nil
		}
		b.results.StartLagTrials = append(b.results.StartLagTrials, trial)
		return nil
	}
	for minute := 0; aLeft > 0 || cLeft > 0; minute++ {
		if cLeft == 0 {
			if err := single(); err != nil {
				return err
			}
			continue
		}
		boundary := nextMinuteAtLeast(10 * time.Second)
		k := min(b.o.cronPerMinute, cLeft)
		names := make([]string, k)
		for j := range names {
			names[j] = fmt.Sprintf("cron-%d-%d", minute, j)
			if err := b.c.Create(ctx, cronJob(ns, names[j], b.o.image, everyMinute)); err != nil {
				return fmt.Errorf("creating CronJob: %w", err)
			}
		}
		for aLeft > 0 && time.Until(boundary) > 8*time.Second {
			if err := single(); err != nil {
				return err
			}
		}
		for _, name := range names {
			seen, err := pods.waitSeen(ctx, name, time.Until(boundary)+time.Minute)
			if err != nil {
				return fmt.Errorf("CronJob %s: %w", name, err)
			}
			cronLags = append(cronLags, seen.Sub(boundary))
			if err := b.deleteCronJob(ctx, ns, name); err != nil {
				return err
			}
		}
		cLeft -= k
		fmt.Printf("minute %d: %d At trials, %d CronJob trials so far\n", minute, len(atLags), len(cronLags))
	}
	if len(atLags) > 0 {
		b.results.StartLag = lagStats(atLags)
	}
	if len(cronLags) > 0 {
		b.results.CronJobStartLag = lagStats(cronLags)
	}
	if runD && len(atLags) > 0 {
		reconcilesAfter, err := b.reconciles(ctx)
		if err != nil {
			return err
		}
		b.results.APICost = &apiCost{
			WritesPerRun:     float64(writes) / float64(len(atLags)),
			ReconcilesPerRun: (reconcilesAfter - reconcilesBefore) / float64(len(atLags)),
		}
	}
	return nil
}

// singleAt runs one At at a sub-second instant about 2 s ahead and returns
// the start lag and the writes it cost: its MODIFIED events, its pod's
// creation and the release of the pod's run finalizer.
func (b *bench) singleAt(ctx context.Context, ns, name string, pods, ats *tracker) (time.Duration, int, error) {
	jitter := time.Duration(rand.Int64N(int64(time.Second)))
	schedule := time.Now().Add(2*time.Second + jitter)
	obj := newAt(ns, name, schedule)
	if err := b.c.Create(ctx, obj); err != nil {
		return 0, 0, fmt.Errorf("creating At: %w", err)
	}
	seen, err := pods.waitSeen(ctx, string(obj.UID), 30*time.Second)
	if err != nil {
		return 0, 0, fmt.Errorf("pod of At %s: %w", name, err)
	}
	if _, err := ats.waitSeen(ctx, name, time.Minute); err != nil {
		return 0, 0, fmt.Errorf("DONE of At %s: %w", name, err)
	}
	// The pod's run finalizer is released right after DONE is stored.
	uid := string(obj.UID)
	if !pods.waitUntil(ctx, time.Now().Add(30*time.Second), func() bool { return pods.count(uid) > 0 }) {
		return 0, 0, fmt.Errorf("the pod of At %s was not released within 30s", name)
	}
	return seen.Sub(schedule), ats.count(name) + 1 + pods.count(uid), nil
}

// bursts runs B: N Ats at one instant; the same N pods created directly, as
// the ceiling of what the API server and the node accept; and, with C, N
// CronJobs on one minute boundary.
func (b *bench) bursts(ctx context.Context, runC bool) error {
	errs := []error{b.atBurst(ctx), b.directBurst(ctx)}
	if runC {
		errs = append(errs, b.cronBurst(ctx))
	}
	return errors.Join(errs...)
}

func (b *bench) atBurst(ctx context.Context) error {
	ns, pods, ats, err := b.watchedNamespace(ctx, "bench-burst")
	if err != nil {
		return err
	}
	defer b.deleteNamespace(ctx, ns, true)
	schedule := time.Now().Add(b.o.burstLead).Truncate(time.Second).Add(137 * time.Millisecond)
	err = b.createBefore(ctx, schedule, "Ats", b.o.burst, func(i int) error {
		// One node runs about 110 pods at a time: finished Ats must make room.
		obj := newAt(ns, fmt.Sprintf("burst-%d", i), schedule)
		obj.Spec.TTLSecondsAfterFinished = ptr.To[int32](0)
		return b.c.Create(ctx, obj)
	})
	if err != nil {
		return err
	}
	// The breakdown is about the instant, not the PENDING writes before it.
	if err := b.waitPending(ctx, ns, b.o.burst, time.Until(schedule)); err != nil {
		fmt.Printf("burst: the breakdown includes PENDING writes: %v\n", err)
	}
	before, err := b.scrape(ctx)
	if err != nil {
		return err
	}
	lags, err := b.waitAllPods(ctx, pods, b.o.burst, schedule)
	if err != nil {
		return err
	}
	result := &burst{
		podTimes: times(lags),
		P50PodS:  percentile(lags, 0.50).Seconds(),
		P99PodS:  percentile(lags, 0.99).Seconds(),
	}
	b.results.Burst = result
	if result.Manager, err = b.explainBurst(ctx, before); err != nil {
		fmt.Printf("burst: no breakdown: %v\n", err)
	}
	result.AllDoneS, result.DoneN = b.waitAllDone(ctx, "burst: Ats DONE", ats, ats.times, b.o.burst, schedule)
	b.results.BurstDone.BurstAllDoneS, b.results.BurstDone.BurstDoneN = result.AllDoneS, result.DoneN
	return nil
}

// waitAllDone waits up to --burst-done-wait after ref until stamps (when
// each of a burst's n objects was first seen done, by t's watch) counts n,
// and returns the last one's time after ref; nil, with the count reached,
// when the wait ran out.
func (b *bench) waitAllDone(ctx context.Context, what string, t *tracker, stamps func() []time.Time, n int, ref time.Time) (*float64, int) {
	b.results.BurstDone.WaitS = b.o.burstDoneWait.Seconds()
	all := t.waitUntil(ctx, ref.Add(b.o.burstDoneWait), func() bool { return len(stamps()) >= n })
	done := sinceAll(stamps(), ref)
	if !all || len(done) == 0 {
		fmt.Printf("%s: only %d of %d within --burst-done-wait=%s; not measured (null)\n", what, len(done), n, b.o.burstDoneWait)
		return nil, len(done)
	}
	fmt.Printf("%s: all %d after %.1f s\n", what, n, done[len(done)-1].Seconds())
	return ptr.To(done[len(done)-1].Seconds()), len(done)
}

// times are the first and last of sorted pod lags.
func times(lags []time.Duration) podTimes {
	return podTimes{N: len(lags), FirstPodS: lags[0].Seconds(), LastPodS: lags[len(lags)-1].Seconds()}
}

// memory is the memory scenario's part of the results, made on first use.
func (b *bench) memory() *memory {
	if b.results.Memory == nil {
		b.results.Memory = &memory{}
	}
	return b.results.Memory
}

// waitAllPods waits up to 5 minutes for n pods and returns their lags after ref, sorted.
func (b *bench) waitAllPods(ctx context.Context, pods *tracker, n int, ref time.Time) ([]time.Duration, error) {
	pods.waitUntil(ctx, ref.Add(5*time.Minute), func() bool { return len(pods.times()) >= n })
	lags := sinceAll(pods.times(), ref)
	if len(lags) < n {
		return nil, fmt.Errorf("only %d of %d burst pods appeared within 5 minutes", len(lags), n)
	}
	return lags, nil
}

// explainBurst says where the manager's time went during the burst, from its
// own metrics: waiting in the workqueue, reconciling, and within that waiting
// on the API server (POST: pods and events; PATCH: status) or on the
// client's QPS limiter.
func (b *bench) explainBurst(ctx context.Context, before metrics) (*burstBreakdown, error) {
	after, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	out := &burstBreakdown{}
	for _, m := range []struct {
		mean      *float64
		histogram string
		labels    map[string]string
	}{
		{&out.QueueWaitMs, "workqueue_queue_duration_seconds", map[string]string{"name": "at"}},
		{&out.ReconcileMs, "controller_runtime_reconcile_time_seconds", map[string]string{"controller": "at"}},
		{&out.PostMs, "rest_client_request_duration_seconds", map[string]string{"verb": "POST"}},
		{&out.PatchMs, "rest_client_request_duration_seconds", map[string]string{"verb": "PATCH"}},
		{&out.ClientThrottleMs, "rest_client_rate_limiter_duration_seconds", nil},
	} {
		seconds, err := meanBetween(before, after, m.histogram, m.labels)
		if err != nil {
			return nil, err
		}
		*m.mean = seconds * 1000
	}
	return out, nil
}

// directBurst creates the burst's pods itself with --workers goroutines (by
// default as many as the manager's default --max-concurrent-reconciles) and
// times them from the first create: how fast this API server and node accept
// pods with no controller in between.
func (b *bench) directBurst(ctx context.Context) error {
	ns, pods, _, err := b.watchedNamespace(ctx, "bench-direct")
	if err != nil {
		return err
	}
	defer b.deleteNamespace(ctx, ns, true)
	start := time.Now()
	err = b.parallel(ctx, b.o.burst, func(i int) error {
		name := fmt.Sprintf("direct-%d", i)
		pod := &corev1.Pod{Spec: runnerPod(b.o.image)}
		pod.Name, pod.Namespace, pod.Labels = name, ns, map[string]string{trialLabel: name}
		return b.c.Create(ctx, pod)
	})
	if err != nil {
		return fmt.Errorf("creating %d pods: %w", b.o.burst, err)
	}
	lags, err := b.waitAllPods(ctx, pods, b.o.burst, start)
	if err != nil {
		return err
	}
	b.results.DirectBurst = ptr.To(times(lags))
	d := &b.results.BurstDone
	d.DirectAllDoneS, d.DirectDoneN = b.waitAllDone(ctx, "burst: direct pods Succeeded", pods, pods.succeededTimes, b.o.burst, start)
	return nil
}

func (b *bench) cronBurst(ctx context.Context) error {
	ns, pods, _, err := b.watchedNamespace(ctx, "bench-cronburst")
	if err != nil {
		return err
	}
	defer b.deleteNamespace(ctx, ns, true)
	boundary := nextMinuteAtLeast(b.o.burstLead)
	// Fires at the boundary only, as an At would: a CronJob firing every
	// minute would start more pods while the burst's run, and "all done"
	// would never come.
	schedule := oneShot(boundary)
	err = b.createBefore(ctx, boundary, "CronJobs", b.o.cronBurst, func(i int) error {
		return b.c.Create(ctx, cronJob(ns, fmt.Sprintf("cron-burst-%d", i), b.o.image, schedule))
	})
	if err != nil {
		return err
	}
	all := pods.waitUntil(ctx, boundary.Add(10*time.Minute), func() bool { return len(pods.times()) >= b.o.cronBurst })
	lags := sinceAll(pods.times(), boundary)
	if !all {
		return fmt.Errorf("only %d of %d CronJob pods appeared within 10 minutes of the boundary", len(lags), b.o.cronBurst)
	}
	b.results.CronJobBurst = ptr.To(times(lags))
	d := &b.results.BurstDone
	d.CronJobBurstAllDoneS, d.CronJobBurstDoneN = b.waitAllDone(ctx, "cronjob burst: pods Succeeded", pods, pods.succeededTimes, b.o.cronBurst, boundary)
	return nil
}

// nextMinuteAtLeast is the minute boundary at which a CronJob created now
// fires, once at least lead is left before it; it waits out a boundary that
// is too close (a CronJob fires at the first boundary after its creation).
func nextMinuteAtLeast(lead time.Duration) time.Time {
	boundary := time.Now().Truncate(time.Minute).Add(time.Minute)
	if time.Until(boundary) < lead {
		time.Sleep(time.Until(boundary) + 100*time.Millisecond)
		boundary = boundary.Add(time.Minute)
	}
	return boundary
}

// watchedNamespace creates a namespace and watches its pods and Ats.
func (b *bench) watchedNamespace(ctx context.Context, prefix string) (ns string, pods, ats *tracker, err error) {
	if ns, err = b.namespace(ctx, prefix); err != nil {
		return "", nil, nil, err
	}
	if pods, err = watchPods(ctx, b.c, ns); err != nil {
		return "", nil, nil, err
	}
	if ats, err = watchAts(ctx, b.c, ns); err != nil {
		return "", nil, nil, err
	}
	return ns, pods, ats, nil
}

// createBefore creates n objects in parallel and fails when that took past
// the instant they are meant to fire at.
func (b *bench) createBefore(ctx context.Context, instant time.Time, what string, n int, create func(i int) error) error {
	start := time.Now()
	if err := b.parallel(ctx, n, create); err != nil {
		return fmt.Errorf("creating %d %s: %w", n, what, err)
	}
	fmt.Printf("%d %s created in %s, %s before they fire\n", n, what, time.Since(start).Round(time.Millisecond), time.Until(instant).Round(time.Millisecond))
	if time.Now().After(instant) {
		return fmt.Errorf("creating %d %s took past their instant: raise the lead (--burst-lead, --burst10k-lead)", n, what)
	}
	return nil
}

func (b *bench) memoryIdle(ctx context.Context) error {
	mib, err := b.managerMemoryMiB(ctx)
	if err != nil {
		return err
	}
	b.memory().IdleMiB = &mib
	return nil
}

// memoryLoaded fills the cluster with PENDING Ats and pods that never run
// (in namespaces of their own, without the operator's label), waits until
// the manager has seen every At, and samples its memory.
func (b *bench) memoryLoaded(ctx context.Context) error {
	atNS, err := b.namespace(ctx, "bench-memory-ats")
	if err != nil {
		return err
	}
	defer b.deleteNamespace(ctx, atNS, false)
	podNS, err := b.namespace(ctx, "bench-memory-pods")
	if err != nil {
		return err
	}
	defer b.deleteNamespace(ctx, podNS, false)
	tomorrow := time.Now().Add(24 * time.Hour)
	start := time.Now()
	err = b.parallel(ctx, b.o.memoryAts, func(i int) error {
		return b.c.Create(ctx, newAt(atNS, fmt.Sprintf("pending-%d", i), tomorrow))
	})
	if err != nil {
		return fmt.Errorf("creating PENDING Ats: %w", err)
	}
	err = b.parallel(ctx, b.o.memoryPods, func(i int) error {
		return b.c.Create(ctx, unschedulablePod(podNS, fmt.Sprintf("idle-%d", i), b.o.image))
	})
	if err != nil {
		return fmt.Errorf("creating unrelated pods: %w", err)
	}
	fmt.Printf("memory: %d Ats and %d pods created in %s\n", b.o.memoryAts, b.o.memoryPods, time.Since(start).Round(time.Second))
	if err := b.waitPending(ctx, atNS, b.o.memoryAts, 10*time.Minute); err != nil {
		return err
	}
	b.memory().PendingAllS = ptr.To(time.Since(start).Seconds())
	peak := 0.0
	for range 5 {
		mib, err := b.managerMemoryMiB(ctx)
		if err != nil {
			return err
		}
		peak = max(peak, mib)
		time.Sleep(2 * time.Second)
	}
	m := b.memory()
	m.LoadedAts, m.LoadedPods, m.LoadedMiB = b.o.memoryAts, b.o.memoryPods, &peak
	return nil
}

// waitPending polls until n Ats of ns are PENDING: a List filtered by the
// CRD's selectable field, metadata only. The watch it replaces stopped
// delivering events under this load, and a poll does not depend on one.
func (b *bench) waitPending(ctx context.Context, ns string, n int, timeout time.Duration) error {
	pending := &metav1.PartialObjectMetadataList{}
	pending.SetGroupVersionKind(cnatv1alpha1.GroupVersion.WithKind("AtList"))
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		err := b.c.List(ctx, pending, client.InNamespace(ns),
			client.MatchingFields{"status.phase": string(cnatv1alpha1.PhasePending)})
		if err != nil {
			fmt.Printf("listing PENDING Ats (retrying): %v\n", err)
			return false, nil
		}
		return len(pending.Items) >= n, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the manager to mark %d Ats PENDING (%d after %s): %w", n, len(pending.Items), timeout, err)
	}
	return nil
}
