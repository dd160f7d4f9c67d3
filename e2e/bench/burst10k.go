package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/programming-kubernetes/cnat/internal/at"
)

// burst10kCleanup bounds the wait for a burst10k namespace to go: the At
// pods each wait for the manager to release their run finalizer once their
// At is deleted.
const burst10kCleanup = 15 * time.Minute

// burst10kRun is G: B at 10,000. Ats due at one instant whose pods carry a
// scheduling gate, so that none runs (10,000 pods could not on this
// machine): what is measured is the manager creating them, its memory
// meanwhile, and that it survives. Then, as the ceiling, the very same pods
// created directly by --workers goroutines.
func (b *bench) burst10kRun(ctx context.Context) error {
	g := &b.results.Burst10k
	g.N = b.o.burst10k
	if err := b.burst10kAts(ctx, g); err != nil {
		return err
	}
	return b.burst10kDirect(ctx, g)
}

func (b *bench) burst10kAts(ctx context.Context, g *burst10kResult) error {
	ns, pods, _, err := b.watchedNamespace(ctx, "bench-burst10k")
	if err != nil {
		return err
	}
	defer b.deleteNamespaceWithin(ctx, ns, burst10kCleanup)
	before, err := b.managerState(ctx)
	if err != nil {
		return err
	}
	n := b.o.burst10k
	schedule := time.Now().Add(b.o.burst10kLead).Truncate(time.Second).Add(137 * time.Millisecond)
	err = b.createBefore(ctx, schedule, "gated Ats", n, func(i int) error {
		return b.c.Create(ctx, gatedAt(ns, fmt.Sprintf("burst10k-%d", i), schedule))
	})
	if err != nil {
		return err
	}
	// Up to T only: past it the manager creates pods, and the count falls.
	if err := b.waitPending(ctx, ns, n, time.Until(schedule)-2*time.Second); err != nil {
		fmt.Printf("burst10k: not every At PENDING before T; the burst includes PENDING writes: %v\n", err)
	} else {
		g.PendingInTime = true
	}
	time.Sleep(time.Until(schedule) - 2*time.Second)
	memory := b.startSampling(ctx, 2*time.Second)
	all := pods.waitUntil(ctx, schedule.Add(10*time.Minute), func() bool { return len(pods.times()) >= n })
	lags := sinceAll(pods.times(), schedule)
	g.PodsN = len(lags)
	if len(lags) > 0 {
		g.FirstPodS = ptr.To(lags[0].Seconds())
	}
	var errs []error
	if all {
		g.LastPodS = ptr.To(lags[len(lags)-1].Seconds())
		fmt.Printf("burst10k: %d pods, the last %.2f s after T\n", n, *g.LastPodS)
	} else {
		errs = append(errs, fmt.Errorf("only %d of %d pods appeared within 10 minutes of T", len(lags), n))
	}
	time.Sleep(10 * time.Second)
	if peak, err := memory.finish(); err != nil {
		errs = append(errs, fmt.Errorf("memory: %w", err))
	} else {
		g.MemoryMiB = &peak
	}
	restarts, err := b.restartsSince(ctx, before)
	if restarts > 0 || err == nil {
		g.ManagerRestarts = &restarts
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("during the burst: %w", err))
	}
	return errors.Join(errs...)
}

// burst10kDirect creates the At burst's pods itself: the spec the manager
// gives a gated At (at.PodFor, as runnerPod), under the direct burst's
// names and labels, without the At's owner reference and finalizer.
func (b *bench) burst10kDirect(ctx context.Context, g *burst10kResult) error {
	ns, pods, _, err := b.watchedNamespace(ctx, "bench-direct10k")
	if err != nil {
		return err
	}
	defer b.deleteNamespaceWithin(ctx, ns, burst10kCleanup)
	n := b.o.burst10k
	spec := at.PodFor(gatedAt("", "", time.Time{}), b.o.image, time.Time{}).Spec
	start := time.Now()
	err = b.parallel(ctx, n, func(i int) error {
		name := fmt.Sprintf("direct10k-%d", i)
		pod := &corev1.Pod{Spec: *spec.DeepCopy()}
		pod.Name, pod.Namespace, pod.Labels = name, ns, map[string]string{trialLabel: name}
		return b.c.Create(ctx, pod)
	})
	if err != nil {
		return fmt.Errorf("creating %d gated pods: %w", n, err)
	}
	all := pods.waitUntil(ctx, start.Add(10*time.Minute), func() bool { return len(pods.times()) >= n })
	lags := sinceAll(pods.times(), start)
	g.DirectPodsN = len(lags)
	if !all {
		return fmt.Errorf("only %d of %d direct pods appeared within 10 minutes", len(lags), n)
	}
	g.DirectLastPodS = ptr.To(lags[len(lags)-1].Seconds())
	fmt.Printf("burst10k: %d direct pods, the last %.2f s after the first create\n", n, *g.DirectLastPodS)
	return nil
}
