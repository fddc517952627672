// Package perfsink is the Go binding of the perfsink engine (libperfsink, a Rust library with
// a C ABI). It links the static library target/release/libperfsink.a, so a program built with
// it needs no shared library at run time; build the library first (`cargo build --release
// --lib` in the repository root) and build with CGO_ENABLED=1.
//
// A Sink is safe for concurrent use. The fast path is RegisterSeries once per series, then
// Submit (or SubmitBatch) with many points per call: one cgo call per batch, never one per
// point. Record writes one point with named fields (the convenience path).
package perfsink

/*
#include "perfsink.h"
*/
import "C"

import (
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// SeriesID identifies a registered series (measurement + tags) of one Sink.
type SeriesID uint32

// Tag is a tag of a series. A tag with an empty value is omitted.
type Tag struct {
	Key, Value string
}

// Sink is an open perfsink engine. Close it when done; a Sink that becomes unreachable
// without Close is closed by the garbage collector (its points are still delivered).
type Sink struct {
	// mu guards ptr: calls hold it shared, Close exclusively, so no call can use a handle
	// that Close frees (perfsink_sink_close, then perfsink_sink_free).
	mu       sync.RWMutex
	ptr      *C.perfsink_sink
	final    Report // after Close
	closeErr error  // after Close: what it returned
	cleanup  runtime.Cleanup
}

// leakedClosed counts sinks closed by the garbage collector (tests read it).
var leakedClosed atomic.Int64

// Open opens a sink from a `KEY=value;KEY=value` configuration string. The keys are the
// environment variable names of the README (INFLUXDB_URL, PERFSINK_BATCH_LINES, ...);
// ConfigString builds such a string with the escapes it needs. Without INFLUXDB_URL
// reporting is disabled: every call succeeds and nothing is sent.
func Open(config string) (*Sink, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	p, err := cOpen(config)
	return newSink(p, err)
}

// OpenEnv opens a sink configured from the INFLUXDB_* and PERFSINK_* environment variables.
func OpenEnv() (*Sink, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	p, err := cOpenEnv()
	return newSink(p, err)
}

func newSink(p *C.perfsink_sink, err error) (*Sink, error) {
	if err != nil {
		return nil, err
	}
	s := &Sink{ptr: p}
	s.cleanup = runtime.AddCleanup(s, closeLeaked, p)
	return s, nil
}

// closeLeaked runs when a Sink was dropped without Close. Closing delivers what is left,
// which may take up to PERFSINK_CLOSE_TIMEOUT_MS, so it must not hold up the cleanup queue.
func closeLeaked(p *C.perfsink_sink) {
	go func() {
		_, _ = cClose(p)
		leakedClosed.Add(1)
	}()
}

// ConfigString encodes key/value pairs as the `KEY=value;...` string Open takes, escaping
// ';' and '\' in values. Keys are sorted, so equal maps give equal strings.
func ConfigString(kv map[string]string) string {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	esc := strings.NewReplacer(`\`, `\\`, `;`, `\;`)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(esc.Replace(kv[k]))
	}
	return b.String()
}

// RegisterSeries registers a series for the fast path and returns its id; registering the
// same series again returns the same id. The point values go to the field valueField
// ("" means "value").
func (s *Sink) RegisterSeries(measurement string, tags []Tag, valueField string) (SeriesID, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	ctags := pinTags(&pin, tags)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return 0, errClosed("register series")
	}
	return cRegister(s.ptr, pinString(&pin, measurement), len(measurement), ctags,
		pinString(&pin, valueField), len(valueField))
}

// MetricKind is what a series' values mean, numbered as k6 numbers its metric types
// (MetricCounter, MetricGauge, MetricTrend, MetricRate).
type MetricKind uint32

// SetSeriesKind sets what the values of series id mean: in the aggregated mode
// (PERFSINK_MODE=aggregate or both) the statistics its intervals carry (a series nobody set
// is a trend). Accepted and without effect in raw mode.
func (s *Sink) SetSeriesKind(id SeriesID, kind MetricKind) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return errClosed("set series kind")
	}
	return cSetSeriesKind(s.ptr, id, kind)
}

// Record writes one point with a measurement, tags and typed fields (the convenience path,
// one cgo call per point). A zero t means now.
func (s *Sink) Record(measurement string, tags []Tag, fields []Field, t time.Time) error {
	var pin runtime.Pinner
	defer pin.Unpin()
	ctags := pinTags(&pin, tags)
	cfields := make([]C.perfsink_field, len(fields))
	for i := range fields {
		f := &fields[i]
		cfields[i] = f.c(pinString(&pin, f.key), pinString(&pin, f.str))
	}
	ts := timestampNow
	if !t.IsZero() {
		ts = t.UnixNano()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return errClosed("record")
	}
	return cRecord(s.ptr, pinString(&pin, measurement), len(measurement), ctags, cfields, ts)
}

var batchPool = sync.Pool{New: func() any { return NewBatch() }}

// Submit submits points of registered series in one cgo call and returns how many the
// engine took. When some were refused (invalid value, full queue under the drop policy,
// closed sink) the error is the first refusal; the others were still taken, and every
// refused point is counted in Stats.
func (s *Sink) Submit(points []Point) (int, error) {
	b := batchPool.Get().(*Batch)
	defer batchPool.Put(b)
	for i := range points {
		b.Add(points[i])
	}
	return s.SubmitBatch(b)
}

// SubmitBatch submits the points of b in one cgo call, like Submit, and empties b.
func (s *Sink) SubmitBatch(b *Batch) (int, error) {
	defer b.Reset()
	if len(b.pts) == 0 {
		return 0, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return 0, errClosed("submit")
	}
	n, err := cSubmit(s.ptr, b.pts, b.mem.submitOut())
	runtime.KeepAlive(b) // its C memory (fields, strings) must outlive the call
	return n, err
}

// Flush sends everything submitted so far and waits until InfluxDB confirmed or refused it,
// at most timeout (CodeTimeout then; nothing is lost, the points stay queued).
func (s *Sink) Flush(timeout time.Duration) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return errClosed("flush")
	}
	return cFlush(s.ptr, timeout)
}

// Stats returns the engine's counters; after Close, the final ones.
func (s *Sink) Stats() (Stats, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return s.final.Stats, nil
	}
	return cStats(s.ptr)
}

// Enabled reports whether the sink sends to InfluxDB (false: opened without INFLUXDB_URL,
// every call succeeds and nothing is sent). CodeClosed after Close.
func (s *Sink) Enabled() (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return false, errClosed("enabled")
	}
	return cEnabled(s.ptr)
}

// LastWriteError is the latest write failure the engine saw ("" when there was none); after
// Close, the one of the close report.
func (s *Sink) LastWriteError() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return s.final.LastWriteError
	}
	return cLastWriteError(s.ptr)
}

// Close delivers what is left (within PERFSINK_CLOSE_TIMEOUT_MS), stops the engine and frees
// it. The error is CodeUndelivered when accepted points were not delivered (the report of
// CloseReport says how many). Calling it again returns the same.
func (s *Sink) Close() error {
	_, err := s.CloseReport()
	return err
}

// CloseStats closes like Close and returns the final counters.
func (s *Sink) CloseStats() (Stats, error) {
	r, err := s.CloseReport()
	return r.Stats, err
}

// CloseReport closes like Close and returns the final report.
func (s *Sink) CloseReport() (Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptr == nil {
		return s.final, s.closeErr
	}
	s.cleanup.Stop()
	r, err := cClose(s.ptr)
	s.ptr, s.final, s.closeErr = nil, r, err
	return r, err
}

// pinString views s as a C string whose bytes stay pinned until pin.Unpin, so that the
// pointer may sit in Go memory passed to C (cgo rule: pointers inside memory passed to C
// must be pinned). String literals are not Go heap memory; pinning them does nothing.
func pinString(pin *runtime.Pinner, s string) *C.char {
	if len(s) == 0 {
		return nil
	}
	p := unsafe.StringData(s)
	pin.Pin(p)
	return (*C.char)(unsafe.Pointer(p))
}

func pinTags(pin *runtime.Pinner, tags []Tag) []C.perfsink_tag {
	if len(tags) == 0 {
		return nil
	}
	out := make([]C.perfsink_tag, len(tags))
	for i, t := range tags {
		out[i] = C.perfsink_tag{
			key: pinString(pin, t.Key), key_len: C.size_t(len(t.Key)),
			value: pinString(pin, t.Value), value_len: C.size_t(len(t.Value)),
		}
	}
	return out
}
