// Package metrics stands in for go.k6.io/k6/metrics (k6 v1.1.0 metrics/*.go): samples,
// series, metrics and tag sets.
package metrics

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// MetricType is the kind of a metric.
type MetricType int

// The metric types, numbered as in k6.
const (
	Counter MetricType = iota
	Gauge
	Trend
	Rate
)

func (t MetricType) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Trend:
		return "trend"
	case Rate:
		return "rate"
	}
	return "[INVALID]"
}

// Metric is a metric (k6 has more fields; perfsink reads Name and Type).
type Metric struct {
	Name string
	Type MetricType
}

// TimeSeries is a metric and a tag set; comparable, usable as a map key.
type TimeSeries struct {
	Metric *Metric
	Tags   *TagSet
}

// Sample is one measurement. Metadata (k6 ≥ v0.41: vu, iter) is not indexed and may be nil.
type Sample struct {
	TimeSeries
	Time     time.Time
	Value    float64
	Metadata map[string]string
}

// GetSamples makes a Sample a SampleContainer of itself.
func (s Sample) GetSamples() []Sample { return []Sample{s} }

// SampleContainer is what outputs receive: anything that yields samples.
type SampleContainer interface {
	GetSamples() []Sample
}

// Samples is a plain slice of samples.
type Samples []Sample

// GetSamples returns the samples.
func (s Samples) GetSamples() []Sample { return s }

// ConnectedSamples are samples sharing one tag set and time (k6's HTTP trail, vus/vus_max).
type ConnectedSamples struct {
	Samples []Sample
	Tags    *TagSet
	Time    time.Time
}

// GetSamples returns the samples.
func (cs ConnectedSamples) GetSamples() []Sample { return cs.Samples }

// Registry owns the root tag set (k6: also the metrics).
type Registry struct {
	root *TagSet
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{root: &TagSet{tree: &tree{nodes: map[string]*TagSet{}}}}
}

// RootTagSet is the empty tag set every other tag set of the registry derives from.
func (r *Registry) RootTagSet() *TagSet { return r.root }

// TagSet is an immutable set of tags. As in k6 (an atlas tree), tag sets of one registry
// are interned: the same tags give the same *TagSet, so pointers compare with ==.
type TagSet struct {
	tree *tree
	tags map[string]string
}

type tree struct {
	mu    sync.Mutex
	nodes map[string]*TagSet
}

// With returns the tag set with name set to value.
func (ts *TagSet) With(name, value string) *TagSet {
	m := make(map[string]string, len(ts.tags)+1)
	for k, v := range ts.tags {
		m[k] = v
	}
	m[name] = value
	return ts.tree.intern(m)
}

// WithTagsFromMap returns the tag set with every entry of m set.
func (ts *TagSet) WithTagsFromMap(m map[string]string) *TagSet {
	out := ts
	for k, v := range m {
		out = out.With(k, v)
	}
	return out
}

// Map returns the tags as a new map (k6 allocates one per call too).
func (ts *TagSet) Map() map[string]string {
	m := make(map[string]string, len(ts.tags))
	for k, v := range ts.tags {
		m[k] = v
	}
	return m
}

func (t *tree) intern(m map[string]string) *TagSet {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	id := b.String()
	t.mu.Lock()
	defer t.mu.Unlock()
	if ts, ok := t.nodes[id]; ok {
		return ts
	}
	ts := &TagSet{tree: t, tags: m}
	t.nodes[id] = ts
	return ts
}
