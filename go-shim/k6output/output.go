// Package k6output is perfsink's k6 output, without k6: it behaves as a k6 output (Start,
// AddMetricSamples every 50 ms, Stop) over small local types, and writes k6's raw InfluxDB
// schema through the perfsink engine. The xk6 registration (module ../xk6) adapts k6's types
// to it; nothing here imports k6.
//
// AddMetricSamples only appends the containers to a buffer and wakes a goroutine; that
// goroutine walks them into samples, interns each distinct series once (keyed by the metric
// and tag-set identities, so a series crosses cgo once), and submits every batch in one cgo
// call. The engine encodes, batches and sends to InfluxDB every push interval.
package k6output

import (
	"errors"
	"fmt"
	"sort"
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

// MetricType is k6's metric type, numbered as in k6. The raw schema does not write it (k6's
// influxdb output does not either).
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
	cfg  Config
	walk Walk[C]
	log  Logger

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
	batch    *perfsink.Batch
	extra    []perfsink.Field
	sets     map[TagSet]*tagEntry
	lastTags TagSet
	last     *tagEntry
	// The metadata map and tag set whose fields the batch's last point has (nil: none, or
	// the last point had no metadata). Holding the map keeps its address from being reused.
	lastMeta      unsafe.Pointer
	lastMetaEntry *tagEntry
	tagFields     map[string]TagField
	vuType        FieldType
	iterType      FieldType
	submitted     uint64
	unreg         uint64
	nseries       uint64
	warned        map[perfsink.Code]bool
	log           Logger
}

// tagEntry is what one tag set gives every series that uses it.
type tagEntry struct {
	tags      []perfsink.Tag     // sample tags minus tagsAsFields and empty values
	fields    *perfsink.FieldSet // the tagsAsFields present, typed
	fieldKeys []string
	few       []seriesRef // the series of this tag set, by metric
	next      int         // where the next lookup in few starts (metrics come in order)
	many      map[Metric]seriesRef
}

type seriesRef struct {
	metric Metric
	id     perfsink.SeriesID
	ok     bool
}

// New resolves the configuration; Start opens the engine.
func New[C any](p Params, walk Walk[C]) (*Output[C], error) {
	cfg, err := ParseConfig(p.ConfigArgument, p.JSONConfig, p.Environment)
	if err != nil {
		return nil, err
	}
	log := p.Logger
	if log == nil {
		log = nopLogger{}
	}
	for _, w := range cfg.Warnings {
		log.Warnf("perfsink: %s", w)
	}
	f := &Feed{
		sets:      map[TagSet]*tagEntry{},
		tagFields: map[string]TagField{},
		vuType:    TypeInt,
		iterType:  TypeInt,
		warned:    map[perfsink.Code]bool{},
		log:       log,
	}
	for _, tf := range cfg.TagsAsFields {
		f.tagFields[tf.Name] = tf
		if tf.Typed && tf.Name == "vu" {
			f.vuType = tf.Type
		}
		if tf.Typed && tf.Name == "iter" {
			f.iterType = tf.Type
		}
	}
	return &Output[C]{
		cfg:     cfg,
		walk:    walk,
		log:     log,
		feed:    f,
		wake:    make(chan struct{}, 1),
		syncReq: make(chan chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// Config is the resolved configuration.
func (o *Output[C]) Config() Config { return o.cfg }

// Description is what k6 prints for the output.
func (o *Output[C]) Description() string { return "perfsink (" + o.cfg.Describe() + ")" }

// Start opens the engine and starts the goroutine that submits samples.
func (o *Output[C]) Start() error {
	sink, err := perfsink.Open(perfsink.ConfigString(o.cfg.Engine))
	if err != nil {
		return err
	}
	o.feed.sink = sink
	o.feed.batch = perfsink.NewBatch()
	o.mu.Lock()
	o.started = true
	o.mu.Unlock()
	go o.run()
	o.log.Debugf("perfsink: started, writing to %s", o.cfg.Describe())
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
	every := time.Second
	if ms, err := strconv.Atoi(o.cfg.Engine["PERFSINK_FLUSH_INTERVAL_MS"]); err == nil && ms > 1000 {
		every = time.Duration(ms) * time.Millisecond
	}
	tick := time.NewTicker(every)
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

// newEntry splits a tag set into tags and tagsAsFields fields (k6's raw schema): empty
// values are omitted, fields are typed (a value that does not parse stays a string, as in k6).
func (f *Feed) newEntry(tags TagSet) *tagEntry {
	e := &tagEntry{}
	if tags == nil {
		return e
	}
	var fields []perfsink.Field
	for k, v := range tags.Map() {
		if v == "" {
			continue
		}
		if tf, ok := f.tagFields[k]; ok {
			fields = append(fields, typedField(k, v, tf.Type))
			e.fieldKeys = append(e.fieldKeys, k)
			continue
		}
		e.tags = append(e.tags, perfsink.Tag{Key: k, Value: v})
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].Key() < fields[j].Key() })
	if len(fields) > 0 {
		e.fields = perfsink.NewFieldSet(fields...)
	}
	return e
}

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

// metadata appends the sample's metadata as fields: vu and iter as integers (unless
// tagsAsFields types them otherwise), other keys as strings (or their tagsAsFields type).
// Keys already written from the tag set, and "value", are skipped.
func (f *Feed) metadata(dst []perfsink.Field, e *tagEntry, md map[string]string) []perfsink.Field {
	found := 0
	if v, ok := md["vu"]; ok {
		found++
		if !e.hasField("vu") {
			dst = append(dst, typedField("vu", v, f.vuType))
		}
	}
	if v, ok := md["iter"]; ok {
		found++
		if !e.hasField("iter") {
			dst = append(dst, typedField("iter", v, f.iterType))
		}
	}
	if len(md) == found {
		return dst
	}
	for k, v := range md {
		if k == "vu" || k == "iter" || k == "value" || e.hasField(k) {
			continue
		}
		typ := TypeString
		if tf, ok := f.tagFields[k]; ok && tf.Typed {
			typ = tf.Type
		}
		dst = append(dst, typedField(k, v, typ))
	}
	return dst
}

// mapIdentity is the map's address: two samples with the same one share the same metadata
// (k6 hands one map to all the samples of a request and never changes it afterwards).
func mapIdentity(m map[string]string) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&m))
}

func (e *tagEntry) hasField(k string) bool {
	for _, f := range e.fieldKeys {
		if f == k {
			return true
		}
	}
	return false
}

func typedField(k, v string, t FieldType) perfsink.Field {
	switch t {
	case TypeInt:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return perfsink.Int(k, n)
		}
	case TypeFloat:
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return perfsink.Float(k, f)
		}
	case TypeBool:
		if b, err := strconv.ParseBool(v); err == nil {
			return perfsink.Bool(k, b)
		}
	}
	return perfsink.String(k, v)
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
