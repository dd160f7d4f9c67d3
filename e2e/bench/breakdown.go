package main

import (
	"fmt"
	"time"
)

// startBreakdown is where one start-lag trial's time went, from the
// manager's two start histograms scraped before and after the trial (one
// observation each) and this program's own watch.
type startBreakdown struct {
	Trial    string  `json:"trial"`
	LagMs    float64 `json:"lag_ms"`    // this program's watch saw the pod − T
	WakeMs   float64 `json:"wake_ms"`   // T → the manager sends the create: timer, workqueue, reads, decision
	CreateMs float64 `json:"create_ms"` // the create's round trip: the API server's admission and storage
	// WatchMs is from the create's answer reaching the manager to this
	// program's watch event; below zero when the event overtook the answer.
	WatchMs float64 `json:"watch_ms"`
}

// breakdownOf splits a trial's lag by the manager's cnat_start_wake_seconds
// and cnat_start_lag_seconds between two scrapes.
func breakdownOf(trial string, lag time.Duration, before, after metrics) (startBreakdown, error) {
	oneObservation := func(histogram string) (float64, error) {
		sum0, n0 := before.histogram(histogram, nil)
		sum1, n1 := after.histogram(histogram, nil)
		if n1 != n0+1 {
			return 0, fmt.Errorf("%s has %d observations during the trial, want 1 (another At started, or the manager restarted)", histogram, int64(n1)-int64(n0))
		}
		return (sum1 - sum0) * 1000, nil
	}
	wake, err := oneObservation("cnat_start_wake_seconds")
	if err != nil {
		return startBreakdown{}, err
	}
	accepted, err := oneObservation("cnat_start_lag_seconds")
	if err != nil {
		return startBreakdown{}, err
	}
	lagMs := float64(lag.Microseconds()) / 1000
	return startBreakdown{Trial: trial, LagMs: lagMs, WakeMs: wake, CreateMs: accepted - wake, WatchMs: lagMs - accepted}, nil
}

// slowest is the trial with the largest lag.
func slowest(trials []startBreakdown) *startBreakdown {
	var worst *startBreakdown
	for i := range trials {
		if worst == nil || trials[i].LagMs > worst.LagMs {
			worst = &trials[i]
		}
	}
	return worst
}
