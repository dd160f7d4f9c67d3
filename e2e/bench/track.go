package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

// trialLabel ties a CronJob's pods to the trial that made the CronJob.
const trialLabel = "bench.cnat.programming-kubernetes.info/trial"

// tracker records, per key, when this program's watch first saw something
// happen, how often it changed, and (pods only) when it was first seen
// Succeeded.
type tracker struct {
	mu        sync.Mutex
	seen      map[string]time.Time
	changes   map[string]int
	succeeded map[string]time.Time
	changed   chan struct{}
}

func newTracker() *tracker {
	return &tracker{seen: map[string]time.Time{}, changes: map[string]int{}, succeeded: map[string]time.Time{}, changed: make(chan struct{})}
}

// recordSucceeded records the first time key was seen Succeeded.
func (t *tracker) recordSucceeded(key string, when time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.succeeded[key]; ok {
		return
	}
	t.succeeded[key] = when
	close(t.changed)
	t.changed = make(chan struct{})
}

// succeededTimes returns when each key was first seen Succeeded.
func (t *tracker) succeededTimes() []time.Time { return t.timesIn(t.succeeded) }

func (t *tracker) record(key string, when time.Time, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if first {
		if _, ok := t.seen[key]; ok {
			return
		}
		t.seen[key] = when
	} else {
		t.changes[key]++
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *tracker) when(key string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.seen[key]
	return w, ok
}

func (t *tracker) count(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changes[key]
}

// times returns the first-seen times of every key.
func (t *tracker) times() []time.Time { return t.timesIn(t.seen) }

// timesIn returns the values of one of the tracker's maps, under its lock.
func (t *tracker) timesIn(byKey map[string]time.Time) []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Collect(maps.Values(byKey))
}

// waitUntil blocks until done holds or the deadline passes; it returns whether done held.
func (t *tracker) waitUntil(ctx context.Context, deadline time.Time, done func() bool) bool {
	for {
		t.mu.Lock()
		ch := t.changed
		t.mu.Unlock()
		if done() {
			return true
		}
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
			return done()
		case <-ctx.Done():
			return false
		}
	}
}

func (t *tracker) waitSeen(ctx context.Context, key string, timeout time.Duration) (time.Time, error) {
	var w time.Time
	ok := t.waitUntil(ctx, time.Now().Add(timeout), func() bool {
		var seen bool
		w, seen = t.when(key)
		return seen
	})
	if !ok {
		return w, fmt.Errorf("%s not seen within %s", key, timeout)
	}
	return w, nil
}

// watchFrom streams the events of list's kind in ns from now on. The API
// server may close a watch at any time (for one, when its reader falls
// behind, as this program can while a burst takes the node's two cores);
// RetryWatcher re-opens it where it left off. It gives up only on an error it
// cannot resume from (such as 410 Gone), which the trackers print.
func watchFrom(ctx context.Context, c client.WithWatch, list client.ObjectList, ns string) (<-chan watch.Event, error) {
	if err := c.List(ctx, list, client.InNamespace(ns), client.Limit(1)); err != nil {
		return nil, fmt.Errorf("listing %T in %s: %w", list, ns, err)
	}
	lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		return c.Watch(ctx, list.DeepCopyObject().(client.ObjectList), client.InNamespace(ns), &client.ListOptions{Raw: &o})
	}}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.GetResourceVersion(), lw)
	if err != nil {
		return nil, fmt.Errorf("watching %T in %s: %w", list, ns, err)
	}
	return w.ResultChan(), nil
}

// warnOnError prints a watch's error event: after one, the tracker sees no more.
func warnOnError(ns string, ev watch.Event) {
	if ev.Type == watch.Error {
		fmt.Printf("watch in %s ended: %v\n", ns, apierrors.FromObject(ev.Object))
	}
}

// track feeds the events of list's kind in ns, from now on, to record on a
// new tracker, each with the time this program received it.
func track(ctx context.Context, c client.WithWatch, list client.ObjectList, ns string,
	record func(t *tracker, ev watch.Event, now time.Time)) (*tracker, error) {
	events, err := watchFrom(ctx, c, list, ns)
	if err != nil {
		return nil, err
	}
	t := newTracker()
	go func() {
		for ev := range events {
			now := time.Now()
			warnOnError(ns, ev)
			record(t, ev, now)
		}
	}()
	return t, nil
}

// watchPods records when each pod of ns is first ADDED, keyed by the At UID
// (At pods) or the trial label (CronJob and direct pods), and when it is
// first seen Succeeded; and counts as a change each release of an At pod's
// run finalizer: the manager's one write to its pod after creating it.
func watchPods(ctx context.Context, c client.WithWatch, ns string) (*tracker, error) {
	held := map[types.UID]bool{} // only the tracker's goroutine touches it
	return track(ctx, c, &corev1.PodList{}, ns, func(t *tracker, ev watch.Event, now time.Time) {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok {
			return
		}
		key := pod.Labels[at.AtUIDLabel]
		if key == "" {
			key = pod.Labels[trialLabel]
		}
		switch ev.Type {
		case watch.Added:
			t.record(key, now, true)
		case watch.Modified:
			if held[pod.UID] && !at.HasRunFinalizer(pod) {
				t.record(key, now, false)
			}
		}
		if pod.Status.Phase == corev1.PodSucceeded && ev.Type != watch.Deleted {
			t.recordSucceeded(key, now)
		}
		held[pod.UID] = at.HasRunFinalizer(pod)
	})
}

// watchAts counts each At's MODIFIED events and records when it is first seen DONE.
func watchAts(ctx context.Context, c client.WithWatch, ns string) (*tracker, error) {
	return track(ctx, c, &cnatv1alpha1.AtList{}, ns, func(t *tracker, ev watch.Event, now time.Time) {
		obj, ok := ev.Object.(*cnatv1alpha1.At)
		if !ok || ev.Type != watch.Modified {
			return
		}
		t.record(obj.Name, now, false)
		if obj.Status.Phase == cnatv1alpha1.PhaseDone {
			t.record(obj.Name, now, true)
		}
	})
}
