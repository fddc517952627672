// Package k6output is perfsink's k6 output, without k6: it behaves as a k6 output (Start,
// AddMetricSamples every 50 ms, Stop) over small local types, and writes k6's raw InfluxDB
// schema through the perfsink engine. The xk6 registration (module ../xk6) adapts k6's types
// to it; nothing here imports k6.
//
// The k6 rules are the engine's (perfsink.K6, the Rust module sources::k6): the configuration
// (--out argument, collectors.perfsink, K6_INFLUXDB_*, INFLUXDB_*, PERFSINK_*) and the schema
// (which tags are written as typed fields, how vu/iter metadata is typed). This package keeps
// what must be Go: k6's types, the handover of the --out argument, and interning tag sets so
// that those rules are asked once per tag set or metadata map, never per sample.
//
// AddMetricSamples only appends the containers to a buffer and wakes a goroutine; that
// goroutine walks them into samples, interns each distinct series once (keyed by the metric
// and tag-set identities, so a series crosses cgo once), and submits every batch in one cgo
// call. The engine encodes, batches and sends to InfluxDB every push interval.
package k6output

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	perfsink "github.com/perfsink/perfsink/go-shim"
)

// Metric is the part of a k6 metric the output reads. Its dynamic value must be comparable
// (k6: a *metrics.Metric); equal values are the same metric.
type Metric interface {
	MetricName() string
	MetricType() MetricType
}

// MetricType is k6's metric type, numbered as in k6 (and as perfsink.MetricKind). The raw
// schema does not write it (k6's influxdb output does not either); the aggregated mode picks
// a series' statistics by it.
type MetricType int

const (
	Counter MetricType = iota
	Gauge
	Trend
	Rate
)

// TagSet is a k6 tag set (k6: *metrics.TagSet). Its dynamic value must be comparable; equal
// values are the same tags, so Map is called once per distinct tag set.
type TagSet interface {
	Map() map[string]string
}

// Sample is one k6 sample.
type Sample struct {
	Metric   Metric
	Tags     TagSet // nil: no tags
	Time     time.Time
	Value    float64
	Metadata map[string]string // k6: vu, iter (not indexed); may be nil
}

// Walk hands the samples of one container (k6: a metrics.SampleContainer) to f.Add. It runs
// on the output's goroutine.
type Walk[C any] func(c C, f *Feed)

// Logger is the part of k6's logger (a logrus.FieldLogger) the output uses.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
	Errorf(format string, args ...any)
}

// Params are the parts of k6's output.Params the output reads.
type Params struct {
	ConfigArgument string            // --out perfsink=ARG
	JSONConfig     []byte            // collectors.perfsink of the k6 config file
	Environment    map[string]string // k6's view of the environment
	Logger         Logger            // nil: no logging
}

// Report is the delivery report of a stopped output.
type Report struct {
	// Samples is how many samples the output handed to the engine.
	Samples uint64
	// Series is how many series the output registered (each distinct metric and tag set
	// crosses cgo once).
	Series uint64
	// Unregistered counts samples whose series the engine refused (PERFSINK_MAX_SERIES
	// reached, or a name it cannot write); they were not submitted.
	Unregistered uint64
	// Overflow counts containers dropped because the buffer was full (the goroutine fell
	// maxPending containers behind) or because they came before Start or after Stop.
	Overflow uint64
	// Engine are the engine's final counters: written, rejected, dropped, ...
	Engine perfsink.Stats
}

// Lost is how many samples did not reach InfluxDB (Overflow counts containers, not included).
func (r Report) Lost() uint64 {
	return r.Unregistered + r.Engine.Rejected + r.Engine.Dropped
}

func (r Report) String() string {
	e := r.Engine
	return fmt.Sprintf("perfsink: %d samples, %d written, %d rejected (invalid %d, by server %d), "+
		"%d dropped (queue full %d, undelivered %d), %d with unregistered series, %d retried requests",
		r.Samples, e.Written, e.Rejected, e.RejectedInvalid, e.RejectedServer,
		e.Dropped, e.DroppedQueueFull, e.DroppedUndelivered, r.Unregistered, e.Retried)
}

const (
	maxBatch   = 8192    // points per cgo call
	maxPending = 1 << 20 // containers buffered before the newest are dropped
)

// Output is a k6 output writing to InfluxDB through perfsink. C is k6's container type.
type Output[C any] struct {
	k6          *perfsink.K6
	description string
	every       time.Duration // how often check runs: the push interval, at least 1 s
	walk        Walk[C]
	log         Logger

	// Shared with AddMetricSamples (k6's goroutine).
	mu       sync.Mutex
	pending  []C
	overflow uint64
	wake     chan struct{}
	syncReq  chan chan struct{}
	stop     chan struct{}
	done     chan struct{}
	started  bool
	stopped  bool
	stopOnce sync.Once
	stopErr  error
	report   Report

	// Owned by the goroutine.
	spare     []C
	feed      *Feed
	lastStats perfsink.Stats
	lastError string
}

// Feed turns samples into engine points: it interns series, builds the batch and submits
// it. It belongs to the output's goroutine.
type Feed struct {
	sink     *perfsink.Sink
	k6       *perfsink.K6
	batch    *perfsink.Batch
	extra    []perfsink.Field
	sets     map[TagSet]*tagEntry
	lastTags TagSet
	last     *tagEntry
	// The metadata map and tag set whose fields the batch's last point has (nil: none, or
	// the last point had no metadata). Holding the map keeps its address from being reused.
	lastMeta      unsafe.Pointer
	lastMetaEntry *tagEntry
	mdTags        []perfsink.Tag // a metadata map sorted by key, reused
	submitted     uint64
	unreg         uint64
	nseries       uint64
	warned        map[perfsink.Code]bool
	log           Logger
}

// tagEntry is what one tag set gives every series that uses it.
type tagEntry struct {
	tags      []perfsink.Tag     // sample tags minus tagsAsFields
	fields    *perfsink.FieldSet // the tagsAsFields present, typed
	fieldKeys []perfsink.Tag     // their keys (values unused), for the metadata question
	few       []seriesRef        // the series of this tag set, by metric
	next      int                // where the next lookup in few starts (metrics come in order)
	many      map[Metric]seriesRef
}

type seriesRef struct {
	metric Metric
	id     perfsink.SeriesID
	ok     bool
}

// New resolves the configuration (by the engine's rules); Start opens the engine.
func New[C any](p Params, walk Walk[C]) (*Output[C], error) {
	k6, err := perfsink.ResolveK6(p.ConfigArgument, p.JSONConfig, p.Environment)
	if err != nil {
		return nil, err
	}
	log := p.Logger
	if log == nil {
		log = nopLogger{}
	}
	for _, note := range k6.Notes() {
		log.Warnf("perfsink: %s", note)
	}
	f := &Feed{
		k6:     k6,
		sets:   map[TagSet]*tagEntry{},
		warned: map[perfsink.Code]bool{},
		log:    log,
	}
	return &Output[C]{
		k6:          k6,
		description: k6.Describe(),
		every:       max(k6.PushInterval(), time.Second),
		walk:        walk,
		log:         log,
		feed:        f,
		wake:        make(chan struct{}, 1),
		syncReq:     make(chan chan struct{}),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}, nil
}

// Description is what k6 prints for the output: where points go, never credentials.
func (o *Output[C]) Description() string { return "perfsink (" + o.description + ")" }

// Start opens the engine and starts the goroutine that submits samples.
func (o *Output[C]) Start() error {
	sink, err := o.k6.OpenSink()
	if err != nil {
		return err
	}
	o.feed.sink = sink
	o.feed.batch = perfsink.NewBatch()
	o.mu.Lock()
	o.started = true
	o.mu.Unlock()
	go o.run()
	o.log.Debugf("perfsink: started, writing to %s", o.description)
	return nil
}

// AddMetricSamples buffers k6's containers and wakes the goroutine; it never blocks on the
// engine or the network.
func (o *Output[C]) AddMetricSamples(cs []C) {
	if len(cs) == 0 {
		return
	}
	o.mu.Lock()
	if !o.started || o.stopped || len(o.pending)+len(cs) > maxPending {
		o.overflow += uint64(len(cs))
		o.mu.Unlock()
		return
	}
	o.pending = append(o.pending, cs...)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Sync waits until everything added so far has been submitted to the engine (not yet
// necessarily written to InfluxDB).
func (o *Output[C]) Sync() {
	o.mu.Lock()
	started := o.started
	o.mu.Unlock()
	if !started {
		return
	}
	done := make(chan struct{})
	select {
	case o.syncReq <- done:
		<-done
	case <-o.done:
	}
}

// Stop submits what is buffered, closes the engine (which delivers what is left within
// PERFSINK_CLOSE_TIMEOUT_MS) and logs the delivery report.
func (o *Output[C]) Stop() error {
	o.stopOnce.Do(func() {
		o.mu.Lock()
		started := o.started
		o.stopped = true
		o.mu.Unlock()
		if !started {
			return
		}
		close(o.stop)
		<-o.done
		f := o.feed
		st, err := f.sink.CloseStats()
		if errors.Is(err, perfsink.CodeUndelivered) {
			err = nil // the loss is in the report, logged below, as k6's own output does
		}
		f.batch.Free()
		o.k6.Free()
		o.mu.Lock()
		o.report = Report{Samples: f.submitted, Series: f.nseries, Unregistered: f.unreg, Overflow: o.overflow, Engine: st}
		r := o.report
		o.mu.Unlock()
		if r.Lost() > 0 || r.Overflow > 0 {
			o.log.Warnf("%s", r)
		} else {
			o.log.Infof("%s", r)
		}
		if msg := o.lastError; msg != "" && r.Engine.Written < r.Samples {
			o.log.Warnf("perfsink: last write error: %s", msg)
		}
		o.stopErr = err
	})
	return o.stopErr
}

// Report is the delivery report (complete once Stop returned).
func (o *Output[C]) Report() Report {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.report
}

func (o *Output[C]) run() {
	defer close(o.done)
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	for {
		select {
		case <-o.wake:
			o.drain()
		case done := <-o.syncReq:
			o.drain()
			close(done)
		case <-tick.C:
			o.check()
		case <-o.stop:
			o.drain()
			return
		}
	}
}

// drain takes the buffered containers and submits their samples.
func (o *Output[C]) drain() {
	o.mu.Lock()
	cs := o.pending
	o.pending = o.spare[:0]
	o.mu.Unlock()
	for _, c := range cs {
		o.walk(c, o.feed)
	}
	o.feed.submit()
	clear(cs)
	o.spare = cs[:0]
}

// Add takes one sample. A sample without a Metric is counted as unregistered.
func (f *Feed) Add(s Sample) {
	if s.Metric == nil {
		f.unreg++
		return
	}
	e := f.entry(s.Tags)
	id, ok := f.series(e, s.Metric)
	if !ok {
		f.unreg++
		return
	}
	ts := s.Time.UnixNano()
	if s.Time.IsZero() {
		ts = time.Now().UnixNano()
	}
	if len(s.Metadata) == 0 {
		f.batch.AddShared(id, s.Value, ts, e.fields)
		f.lastMeta = nil
	} else if md := mapIdentity(s.Metadata); md != f.lastMeta || e != f.lastMetaEntry ||
		!f.batch.AddRepeat(id, s.Value, ts) {
		// Not the metadata map and tag set of the point before (the samples of one k6
		// request share both): convert its fields.
		fields := f.metadata(f.extra[:0], e, s.Metadata)
		f.extra = fields
		f.batch.Add(perfsink.Point{Series: id, Value: s.Value, Time: time.Unix(0, ts), Shared: e.fields, Fields: fields})
		f.lastMeta, f.lastMetaEntry = md, e
	}
	if f.batch.Len() >= maxBatch {
		f.submit()
	}
}

func (f *Feed) submit() {
	f.lastMeta, f.lastMetaEntry = nil, nil
	if f.batch.Len() == 0 {
		return
	}
	n, err := f.sink.SubmitBatch(f.batch)
	f.submitted += uint64(n)
	if err != nil {
		f.warnOnce(err, "some samples were not taken")
	}
}

// entry is the interned tag set; the last one is remembered because the samples of one k6
// container (an HTTP request's 8 samples) share a tag set.
func (f *Feed) entry(tags TagSet) *tagEntry {
	if f.last != nil && tags == f.lastTags {
		return f.last
	}
	e, ok := f.sets[tags]
	if !ok {
		e = f.newEntry(tags)
		f.sets[tags] = e
	}
	f.lastTags, f.last = tags, e
	return e
}

// newEntry asks the engine's schema what a tag set becomes: the tags that stay tags and the
// typed fields (tagsAsFields) the others become, converted to C once for all its points.
func (f *Feed) newEntry(tags TagSet) *tagEntry {
	e := &tagEntry{}
	if tags == nil {
		return e
	}
	m := tags.Map()
	sorted := make([]perfsink.Tag, 0, len(m))
	for k, v := range m {
		sorted = append(sorted, perfsink.Tag{Key: k, Value: v})
	}
	slices.SortFunc(sorted, byKey)
	kept, fields, err := f.k6.SplitTags(sorted)
	if err != nil {
		// Not UTF-8: registering the series fails the same way, and is counted then.
		f.warnOnce(err, "cannot read a tag set")
		e.tags = sorted
		return e
	}
	e.tags = kept
	for _, fl := range fields {
		e.fieldKeys = append(e.fieldKeys, perfsink.Tag{Key: fl.Key()})
	}
	if len(fields) > 0 {
		e.fields = perfsink.NewFieldSet(fields...)
	}
	return e
}

func byKey(a, b perfsink.Tag) int { return cmp.Compare(a.Key, b.Key) }

// series is the engine's id of (metric, tag set), registered on first use.
func (f *Feed) series(e *tagEntry, m Metric) (perfsink.SeriesID, bool) {
	if e.many != nil {
		if r, ok := e.many[m]; ok {
			return r.id, r.ok
		}
	} else {
		// Start where the last lookup ended: k6 sends the samples of a tag set in the same
		// metric order every time (an HTTP trail's 8), so the first comparison usually hits.
		n := len(e.few)
		for i, j := 0, e.next; i < n; i, j = i+1, j+1 {
			if j >= n {
				j = 0
			}
			if r := &e.few[j]; r.metric == m {
				e.next = j + 1
				return r.id, r.ok
			}
		}
	}
	id, err := f.sink.RegisterSeries(m.MetricName(), e.tags, "")
	f.nseries++
	if err != nil {
		f.warnOnce(err, "cannot register the series of metric "+strconv.Quote(m.MetricName()))
	} else if kerr := f.sink.SetSeriesKind(id, perfsink.MetricKind(m.MetricType())); kerr != nil {
		// The aggregated mode's statistics follow the kind; without it the series is a trend.
		f.warnOnce(kerr, "cannot set the type of metric "+strconv.Quote(m.MetricName()))
	}
	r := seriesRef{metric: m, id: id, ok: err == nil}
	switch {
	case e.many != nil:
		e.many[m] = r
	case len(e.few) < 16:
		e.few = append(e.few, r)
	default:
		e.many = make(map[Metric]seriesRef, 2*len(e.few))
		for _, r := range e.few {
			e.many[r.metric] = r
		}
		e.many[m] = r
		e.few = nil
	}
	return r.id, r.ok
}

// metadata appends the fields the engine's schema makes of a sample's metadata (one cgo call
// per distinct metadata map: the samples of a k6 request share theirs).
func (f *Feed) metadata(dst []perfsink.Field, e *tagEntry, md map[string]string) []perfsink.Field {
	f.mdTags = f.mdTags[:0]
	iter, hasIter := md["iter"]
	vu, hasVu := md["vu"]
	if n := len(md); (n == 2 && hasIter && hasVu) || (n == 1 && (hasIter || hasVu)) {
		// k6's usual metadata: sorted without walking and sorting the map.
		if hasIter {
			f.mdTags = append(f.mdTags, perfsink.Tag{Key: "iter", Value: iter})
		}
		if hasVu {
			f.mdTags = append(f.mdTags, perfsink.Tag{Key: "vu", Value: vu})
		}
	} else {
		for k, v := range md {
			f.mdTags = append(f.mdTags, perfsink.Tag{Key: k, Value: v})
		}
		slices.SortFunc(f.mdTags, byKey)
	}
	dst, err := f.k6.MetadataFields(dst, f.mdTags, e.fieldKeys)
	if err != nil {
		f.warnOnce(err, "cannot read a sample's metadata")
	}
	return dst
}

// mapIdentity is the map's address: two samples with the same one share the same metadata
// (k6 hands one map to all the samples of a request and never changes it afterwards).
func mapIdentity(m map[string]string) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&m))
}

// check runs every push interval: it warns (once per new loss or write error) so that
// problems show during the test, not only in the report at its end.
func (o *Output[C]) check() {
	st, err := o.feed.sink.Stats()
	if err != nil {
		return
	}
	prev := o.lastStats
	o.lastStats = st
	if st.Dropped > prev.Dropped || st.RejectedServer > prev.RejectedServer {
		o.log.Warnf("perfsink: %d points dropped and %d refused by InfluxDB so far (queue full %d, undelivered %d)",
			st.Dropped, st.RejectedServer, st.DroppedQueueFull, st.DroppedUndelivered)
	}
	if msg := o.feed.sink.LastWriteError(); msg != "" && msg != o.lastError {
		o.lastError = msg
		o.log.Warnf("perfsink: write failed (the engine retries): %s", msg)
	}
}

// warnOnce logs the first error of each code; the engine counts every occurrence.
func (f *Feed) warnOnce(err error, what string) {
	var pe *perfsink.Error
	code := perfsink.Code(0)
	if errors.As(err, &pe) {
		code = pe.Code
	}
	if f.warned[code] {
		return
	}
	f.warned[code] = true
	f.log.Warnf("perfsink: %s: %v (further errors of this kind are only counted)", what, err)
}

type nopLogger struct{}

func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Warnf(string, ...any)  {}
func (nopLogger) Errorf(string, ...any) {}
