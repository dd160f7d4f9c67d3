package main

import (
	"bytes"
	"context"
	"fmt"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/programming-kubernetes/cnat/e2e/internal/scrape"
)

// fetchMetrics is the manager's /metrics text. It is the only place that
// knows how the endpoint is reached: e2e/internal/scrape, with the token of a
// service account allowed to read metrics.
func (b *bench) fetchMetrics(ctx context.Context) ([]byte, error) {
	return scrape.Manager(ctx, b.cfg)
}

// metrics is one scrape of the manager, parsed: the metric families by name.
type metrics map[string]*dto.MetricFamily

func (b *bench) scrape(ctx context.Context) (metrics, error) {
	body, err := b.fetchMetrics(ctx)
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parsing the manager's metrics: %w", err)
	}
	return families, nil
}

// series are the samples of the family called name whose labels include
// every one of labels. A family the manager has not produced yet has none.
func (m metrics) series(name string, labels map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, sample := range m[name].GetMetric() {
		if hasLabels(sample, labels) {
			out = append(out, sample)
		}
	}
	return out
}

func hasLabels(sample *dto.Metric, want map[string]string) bool {
	matched := 0
	for _, pair := range sample.GetLabel() {
		if v, ok := want[pair.GetName()]; ok && v == pair.GetValue() {
			matched++
		}
	}
	return matched == len(want)
}

// counter adds up a counter's matching series.
func (m metrics) counter(name string, labels map[string]string) float64 {
	total := 0.0
	for _, sample := range m.series(name, labels) {
		total += sample.GetCounter().GetValue()
	}
	return total
}

// histogram adds up a histogram's matching series: the sum and the count of
// its observations.
func (m metrics) histogram(name string, labels map[string]string) (sum float64, count uint64) {
	for _, sample := range m.series(name, labels) {
		sum += sample.GetHistogram().GetSampleSum()
		count += sample.GetHistogram().GetSampleCount()
	}
	return sum, count
}

// meanBetween is a histogram's mean over the observations made between two
// scrapes; zero when there were none.
func meanBetween(before, after metrics, histogram string, labels map[string]string) (float64, error) {
	sum0, n0 := before.histogram(histogram, labels)
	sum1, n1 := after.histogram(histogram, labels)
	switch {
	case n1 < n0:
		return 0, fmt.Errorf("%s went backwards: the manager restarted between the scrapes", histogram)
	case n1 == n0:
		return 0, nil
	}
	return (sum1 - sum0) / float64(n1-n0), nil
}

// reconciles is controller_runtime_reconcile_total of the At controller.
func (b *bench) reconciles(ctx context.Context) (float64, error) {
	m, err := b.scrape(ctx)
	if err != nil {
		return 0, err
	}
	return m.counter("controller_runtime_reconcile_total", map[string]string{"controller": "at"}), nil
}
