package perfsink

// The cgo boundary: every call into libperfsink is made here. Each fallible call passes a
// buffer for its own error message (the ABI's trailing `char *err, size_t err_len`), so a
// message is never read from another call, whatever OS thread the goroutine runs on. The hot
// path (SubmitBatch) reuses a buffer in the Batch's C memory; the other calls use a Go array,
// which holds no Go pointers and is passed only for the call. Go never stores a pointer in C
// memory, and C never keeps a pointer to Go memory past the call (see batch.go and sink.go
// for what is passed).

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#cgo LDFLAGS: ${SRCDIR}/../target/release/libperfsink.a -lpthread -ldl -lm
#include <stdlib.h>
#include "perfsink.h"
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// timestampNow asks the engine to stamp a point with its current time.
var timestampNow = int64(C.PERFSINK_TIMESTAMP_NOW)

// The metric kinds (perfsink_metric_kind), numbered as k6 numbers its metric types.
const (
	MetricCounter MetricKind = C.PERFSINK_METRIC_COUNTER
	MetricGauge   MetricKind = C.PERFSINK_METRIC_GAUGE
	MetricTrend   MetricKind = C.PERFSINK_METRIC_TREND
	MetricRate    MetricKind = C.PERFSINK_METRIC_RATE
)

// errLen is the size of a per-call message buffer: messages longer than that are cut (at a
// character boundary).
const errLen = 512

// errBuf is a per-call message buffer in Go memory.
type errBuf [errLen]C.char

// result turns a call's code and message buffer into a Go error (nil on success).
func result(op string, code C.perfsink_result, msg *C.char) error {
	if code == C.PERFSINK_OK {
		return nil
	}
	return &Error{Code: Code(code), Op: op, Message: C.GoString(msg)}
}

// abiVersion is the C ABI this binding is written for: 1.1 (perfsink_sink_set_series_kind).
const abiVersion = C.PERFSINK_ABI_VERSION_MAJOR<<16 | C.PERFSINK_ABI_VERSION_MINOR

// checkABI refuses a library of another major version, or an older minor one.
func checkABI() error {
	v := uint32(C.perfsink_abi_version())
	if v>>16 != C.PERFSINK_ABI_VERSION_MAJOR || v < abiVersion {
		return fmt.Errorf("perfsink: libperfsink has C ABI %d.%d, this binding needs %d.%d or a later %d.x",
			v>>16, v&0xFFFF, C.PERFSINK_ABI_VERSION_MAJOR, C.PERFSINK_ABI_VERSION_MINOR, C.PERFSINK_ABI_VERSION_MAJOR)
	}
	return nil
}

func cOpen(config string) (*C.perfsink_sink, error) {
	var s *C.perfsink_sink
	var e errBuf
	rc := C.perfsink_sink_open(cString(config), C.size_t(len(config)), &s, &e[0], errLen)
	return s, result("open", rc, &e[0])
}

func cOpenEnv() (*C.perfsink_sink, error) {
	var s *C.perfsink_sink
	var e errBuf
	rc := C.perfsink_sink_open_env(&s, &e[0], errLen)
	return s, result("open", rc, &e[0])
}

func cSetSeriesKind(s *C.perfsink_sink, id SeriesID, kind MetricKind) error {
	var e errBuf
	rc := C.perfsink_sink_set_series_kind(s, C.uint32_t(id), C.uint32_t(kind), &e[0], errLen)
	return result("set series kind", rc, &e[0])
}

func cEnabled(s *C.perfsink_sink) (bool, error) {
	var on C.bool
	var e errBuf
	rc := C.perfsink_sink_enabled(s, &on, &e[0], errLen)
	return bool(on), result("enabled", rc, &e[0])
}

func cFlush(s *C.perfsink_sink, timeout time.Duration) error {
	ms := timeout.Milliseconds()
	switch {
	case ms < 0:
		ms = 0
	case ms > int64(^uint32(0)):
		ms = int64(^uint32(0))
	}
	var e errBuf
	rc := C.perfsink_sink_flush(s, C.uint32_t(ms), &e[0], errLen)
	return result("flush", rc, &e[0])
}

func cStats(s *C.perfsink_sink) (Stats, error) {
	var st C.perfsink_stats
	var e errBuf
	rc := C.perfsink_sink_stats(s, &st, C.sizeof_perfsink_stats, &e[0], errLen)
	return statsFrom(&st), result("stats", rc, &e[0])
}

// cClose closes and frees the handle: the caller makes sure no other call uses it.
func cClose(s *C.perfsink_sink) (Report, error) {
	var r C.perfsink_close_report
	var e errBuf
	rc := C.perfsink_sink_close(s, &r, C.sizeof_perfsink_close_report, &e[0], errLen)
	err := result("close", rc, &e[0])
	rep := Report{
		Stats:       statsFrom(&r.stats),
		KeptInSpool: uint64(r.kept_in_spool),
		Delivered:   r.delivered != 0,
	}
	if r.has_last_write_error != 0 {
		rep.LastWriteError = cLastWriteError(s)
	}
	C.perfsink_sink_free(s)
	return rep, err
}

// cLastWriteError is the sink's latest write failure ("" when there was none).
func cLastWriteError(s *C.perfsink_sink) string {
	var e errBuf
	n := C.perfsink_sink_last_write_error(s, &e[0], errLen)
	if n == 0 {
		return ""
	}
	if n < errLen {
		return C.GoStringN(&e[0], C.int(n))
	}
	// Longer than the buffer: ask again with room for all of it.
	buf := (*C.char)(C.malloc(n + 1))
	defer C.free(unsafe.Pointer(buf))
	n = min(n, C.perfsink_sink_last_write_error(s, buf, n+1))
	return C.GoStringN(buf, C.int(n))
}

// cString views a Go string as a C (ptr, len) argument. Passing it straight to a C function
// is allowed by the cgo rules (string bytes hold no Go pointers; the call pins them); it must
// not be stored in C or Go memory that is passed to C — use a Pinner or the arena for that.
func cString(s string) *C.char {
	if len(s) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
}

func statsFrom(st *C.perfsink_stats) Stats {
	return Stats{
		Accepted:           uint64(st.accepted),
		Replayed:           uint64(st.replayed),
		Written:            uint64(st.written),
		Retried:            uint64(st.retried),
		Rejected:           uint64(st.rejected),
		RejectedInvalid:    uint64(st.rejected_invalid),
		RejectedServer:     uint64(st.rejected_server),
		Dropped:            uint64(st.dropped),
		DroppedQueueFull:   uint64(st.dropped_queue_full),
		DroppedUndelivered: uint64(st.dropped_undelivered),
		Spooled:            uint64(st.spooled),
		QueueDepth:         uint64(st.queue_depth),
		Deduplicated:       uint64(st.deduplicated),
		Series:             uint64(st.series),
		SeriesRejected:     uint64(st.series_rejected),
		Requests:           uint64(st.requests),
		BytesSent:          uint64(st.bytes_sent),
		WriteLatencyMean:   time.Duration(st.write_latency_us_mean) * time.Microsecond,
		WriteLatencyMax:    time.Duration(st.write_latency_us_max) * time.Microsecond,
		DedupUnchecked:     uint64(st.dedup_unchecked),

		Aggregated:              uint64(st.aggregated),
		AggregatedLate:          uint64(st.aggregated_late),
		AggregatedNoPercentiles: uint64(st.aggregated_no_percentiles),
	}
}

// Version is the engine's version ("0.1.0").
func Version() string { return C.GoString(C.perfsink_version()) }

// ABIVersion is the C ABI version of the linked engine, major and minor.
func ABIVersion() (major, minor int) {
	v := uint32(C.perfsink_abi_version())
	return int(v >> 16), int(v & 0xFFFF)
}

// String is the code's C name, such as "PERFSINK_TIMEOUT".
func (c Code) String() string { return C.GoString(C.perfsink_result_name(C.uint32_t(c))) }

func cRegister(s *C.perfsink_sink, m *C.char, mLen int, tags []C.perfsink_tag, vf *C.char, vfLen int) (SeriesID, error) {
	var id C.uint32_t
	var e errBuf
	rc := C.perfsink_sink_register_series(s, m, C.size_t(mLen), sliceData(tags), C.size_t(len(tags)),
		vf, C.size_t(vfLen), &id, &e[0], errLen)
	return SeriesID(id), result("register series", rc, &e[0])
}

// cSubmit is the hot path: its outputs (the accepted count and the message buffer) live in
// the caller's reusable C memory, so a call allocates nothing.
func cSubmit(s *C.perfsink_sink, pts []C.perfsink_point, out *submitOut) (int, error) {
	rc := C.perfsink_sink_submit(s, sliceData(pts), C.size_t(len(pts)), &out.accepted, &out.err[0], errLen)
	return int(out.accepted), result("submit", rc, &out.err[0])
}

// submitOut is where perfsink_sink_submit writes its outputs; a Batch keeps one in C memory.
type submitOut struct {
	accepted C.size_t
	err      [errLen]C.char
}

func cRecord(s *C.perfsink_sink, m *C.char, mLen int, tags []C.perfsink_tag, fields []C.perfsink_field, ts int64) error {
	var e errBuf
	rc := C.perfsink_sink_record(s, m, C.size_t(mLen), sliceData(tags), C.size_t(len(tags)),
		sliceData(fields), C.size_t(len(fields)), C.int64_t(ts), &e[0], errLen)
	return result("record", rc, &e[0])
}

// sliceData is &s[0], or nil for an empty slice (the ABI takes NULL with a zero count).
func sliceData[T any](s []T) *T {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// The k6 rules (k6.go). Their string arguments are Go memory without Go pointers, passed only
// for the call; the tag arrays of the per-tag-set questions are in the K6's C memory.

func cK6Resolve(arg string, json []byte, env string) (*C.perfsink_k6, error) {
	var k *C.perfsink_k6
	var e errBuf
	// A NULL argument means "not asked for by name"; the output always was, maybe without text.
	argPtr := cString(arg)
	if argPtr == nil {
		argPtr = &e[0]
	}
	rc := C.perfsink_k6_resolve(argPtr, C.size_t(len(arg)), (*C.char)(unsafe.Pointer(sliceData(json))), C.size_t(len(json)),
		cString(env), C.size_t(len(env)), &k, &e[0], errLen)
	return k, result("k6 config", rc, &e[0])
}

func cK6OpenSink(k *C.perfsink_k6) (*C.perfsink_sink, error) {
	var s *C.perfsink_sink
	var e errBuf
	rc := C.perfsink_k6_open_sink(k, &s, &e[0], errLen)
	return s, result("open", rc, &e[0])
}

func cK6Free(k *C.perfsink_k6) { C.perfsink_k6_free(k) }

func cK6Describe(k *C.perfsink_k6) string {
	return cText(func(buf *C.char, n C.size_t) C.size_t { return C.perfsink_k6_describe(k, buf, n) })
}

func cK6Notes(k *C.perfsink_k6) []string {
	notes := make([]string, int(C.perfsink_k6_note_count(k)))
	for i := range notes {
		notes[i] = cText(func(buf *C.char, n C.size_t) C.size_t { return C.perfsink_k6_note(k, C.size_t(i), buf, n) })
	}
	return notes
}

func cK6PushIntervalMs(k *C.perfsink_k6) uint64 { return uint64(C.perfsink_k6_push_interval_ms(k)) }

// cK6SplitTags and cK6MetadataFields take their message buffer (errLen bytes) in C memory,
// so that asking allocates nothing.
func cK6SplitTags(k *C.perfsink_k6, tags []C.perfsink_tag, out []C.perfsink_field, err *C.char) error {
	rc := C.perfsink_k6_split_tags(k, sliceData(tags), C.size_t(len(tags)), sliceData(out), err, errLen)
	return result("k6 split tags", rc, err)
}

func cK6MetadataFields(k *C.perfsink_k6, md, tagFields []C.perfsink_tag, out []C.perfsink_field, err *C.char) error {
	rc := C.perfsink_k6_metadata_fields(k, sliceData(md), C.size_t(len(md)), sliceData(tagFields),
		C.size_t(len(tagFields)), sliceData(out), err, errLen)
	return result("k6 metadata fields", rc, err)
}

// cText reads a string an infallible call copies into a buffer (returning its full length),
// asking again with room for all of it when the first buffer was too small.
func cText(get func(buf *C.char, n C.size_t) C.size_t) string {
	var e errBuf
	n := get(&e[0], errLen)
	if n < errLen {
		return C.GoStringN(&e[0], C.int(n))
	}
	buf := (*C.char)(C.malloc(n + 1))
	defer C.free(unsafe.Pointer(buf))
	n = min(n, get(buf, n+1))
	return C.GoStringN(buf, C.int(n))
}
