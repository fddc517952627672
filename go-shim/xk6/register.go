// Package xk6 registers perfsink as the k6 output "perfsink" (`k6 run --out perfsink=...`)
// in a k6 built with xk6. It is the only code of the repository that names k6 packages: it
// adapts k6's samples to the k6-free output in ../k6output, which does the work.
package xk6

import (
	"go.k6.io/k6/metrics"
	"go.k6.io/k6/output"

	"github.com/perfsink/perfsink/go-shim/k6output"
)

func init() {
	output.RegisterExtension("perfsink", New)
}

var _ output.Output = (*k6output.Output[metrics.SampleContainer])(nil)

// New is the output's constructor: it resolves the configuration (--out argument, the
// config file's collectors.perfsink, K6_INFLUXDB_*, INFLUXDB_* and PERFSINK_* variables);
// Start opens the engine.
func New(p output.Params) (output.Output, error) {
	var log k6output.Logger
	if p.Logger != nil {
		log = p.Logger
	}
	o, err := k6output.New(k6output.Params{
		ConfigArgument: p.ConfigArgument,
		JSONConfig:     p.JSONConfig,
		Environment:    p.Environment,
		Logger:         log,
	}, walk)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// walk hands the samples of one k6 container to the output. It runs on the output's
// goroutine, not on k6's. The *metrics.Metric and *metrics.TagSet pointers are the series
// identities (k6 interns tag sets), so each distinct series is resolved and registered once.
func walk(c metrics.SampleContainer, f *k6output.Feed) {
	if s, ok := c.(metrics.Sample); ok { // its GetSamples allocates a one-sample slice
		add(f, &s)
		return
	}
	samples := c.GetSamples()
	for i := range samples {
		add(f, &samples[i])
	}
}

func add(f *k6output.Feed, s *metrics.Sample) {
	if s.Metric == nil {
		return
	}
	var tags k6output.TagSet
	if s.Tags != nil {
		tags = s.Tags
	}
	f.Add(k6output.Sample{
		Metric:   (*metric)(s.Metric),
		Tags:     tags,
		Time:     s.Time,
		Value:    s.Value,
		Metadata: s.Metadata,
	})
}

// metric is k6's Metric seen as a k6output.Metric (a pointer conversion: no copy, no
// allocation, and the pointer stays the identity).
type metric metrics.Metric

func (m *metric) MetricName() string              { return m.Name }
func (m *metric) MetricType() k6output.MetricType { return k6output.MetricType(m.Type) }
