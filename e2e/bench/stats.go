package main

import (
	"slices"
	"time"
)

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

// lags summarises the start lags of single trials, in milliseconds.
type lags struct {
	Trials int     `json:"trials"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
}

func lagStats(d []time.Duration) *lags {
	slices.Sort(d)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return &lags{
		Trials: len(d),
		P50:    ms(percentile(d, 0.50)),
		P90:    ms(percentile(d, 0.90)),
		P99:    ms(percentile(d, 0.99)),
		Max:    ms(d[len(d)-1]),
	}
}
