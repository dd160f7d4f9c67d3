package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	startLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cnat_start_lag_seconds",
		Help:    "Time from an At's schedule until the API server has accepted its pod.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	})
	// startWake is the part of startLag before the create is sent: the
	// timer, the workqueue, the reads and the decision. What remains of
	// startLag is the create's round trip; a slow start shows which it was.
	startWake = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cnat_start_wake_seconds",
		Help:    "Time from an At's schedule until its pod's create is sent to the API server.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	})
	runsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cnat_runs_total",
		Help: "Ats that reached DONE, by result.",
	}, []string{"result"})
)

func init() {
	metrics.Registry.MustRegister(startLag, startWake, runsTotal)
	// Whether a slow burst waits on the API server or on the client's own
	// QPS limiter is the first question when tuning --kube-api-qps.
	metrics.RegisterRESTClientMetrics(metrics.MetricRequestLatency, metrics.MetricRateLimiterLatency)
}
