package perfsink

// The cgo boundary: every call into libperfsink goes through one of the gops_* helpers below.
// Each helper makes one C ABI call and, when it fails, reads perfsink_last_error() inside the
// same C call — so on the same OS thread, whatever goroutine scheduling happens around it —
// into malloc'd memory that Go copies and frees. Go never stores a pointer in C memory, and C
// never keeps a pointer to Go memory past the call (see batch.go and sink.go for what is
// passed).

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#cgo LDFLAGS: ${SRCDIR}/../target/release/libperfsink.a -lpthread -ldl -lm
#include <stdlib.h>
#include "perfsink.h"

typedef struct {
	perfsink_result code;
	uint32_t series;
	size_t accepted;
	perfsink_sink *sink;
	char *msg;       // malloc'd copy of perfsink_last_error() on failure, else NULL
	size_t msg_len;
} gops_result;

static gops_result gops_done(perfsink_result code) {
	gops_result r = {0};
	r.code = code;
	if (code != PERFSINK_OK) {
		size_t n = perfsink_last_error(NULL, 0);
		r.msg = malloc(n + 1);
		if (r.msg != NULL) {
			size_t full = perfsink_last_error(r.msg, n + 1);
			r.msg_len = full < n ? full : n;
		}
	}
	return r;
}

static gops_result gops_open(const char *cfg, size_t len) {
	perfsink_sink *s = NULL;
	gops_result r = gops_done(perfsink_sink_open(cfg, len, &s));
	r.sink = s;
	return r;
}

static gops_result gops_open_env(void) {
	perfsink_sink *s = NULL;
	gops_result r = gops_done(perfsink_sink_open_env(&s));
	r.sink = s;
	return r;
}

static gops_result gops_register(const perfsink_sink *s, const char *m, size_t m_len,
		const perfsink_tag *tags, size_t tag_count, const char *vf, size_t vf_len) {
	uint32_t id = 0;
	gops_result r = gops_done(perfsink_sink_register_series(s, m, m_len, tags, tag_count, vf, vf_len, &id));
	r.series = id;
	return r;
}

static gops_result gops_submit(const perfsink_sink *s, const perfsink_point *pts, size_t n) {
	size_t accepted = 0;
	gops_result r = gops_done(perfsink_sink_submit(s, pts, n, &accepted));
	r.accepted = accepted;
	return r;
}

static gops_result gops_record(const perfsink_sink *s, const char *m, size_t m_len,
		const perfsink_tag *tags, size_t tag_count, const perfsink_field *fields,
		size_t field_count, int64_t ts) {
	return gops_done(perfsink_sink_record(s, m, m_len, tags, tag_count, fields, field_count, ts));
}

static gops_result gops_flush(const perfsink_sink *s, uint32_t timeout_ms) {
	return gops_done(perfsink_sink_flush(s, timeout_ms));
}

static gops_result gops_stats(const perfsink_sink *s, perfsink_stats *out) {
	return gops_done(perfsink_sink_stats(s, out));
}

static gops_result gops_close(perfsink_sink *s, perfsink_stats *out) {
	return gops_done(perfsink_sink_close(s, out));
}

// A malloc'd copy of the sink's latest write failure (NULL when there was none).
static char *gops_last_write_error(const perfsink_sink *s, size_t *len) {
	size_t n = perfsink_sink_last_write_error(s, NULL, 0);
	*len = 0;
	if (n == 0) return NULL;
	char *buf = malloc(n + 1);
	if (buf == NULL) return NULL;
	size_t full = perfsink_sink_last_write_error(s, buf, n + 1);
	*len = full < n ? full : n;
	return buf;
}
*/
import "C"

import (
	"time"
	"unsafe"
)

// TimestampNow asks Record to stamp the point with the engine's current time.
var timestampNow = int64(C.PERFSINK_TIMESTAMP_NOW)

// result turns a helper's outcome into a Go error (nil on success), freeing the C message.
func result(op string, r *C.gops_result) error {
	if r.code == C.PERFSINK_OK {
		return nil
	}
	var msg string
	if r.msg != nil {
		msg = C.GoStringN(r.msg, C.int(r.msg_len))
		C.free(unsafe.Pointer(r.msg))
		r.msg = nil
	}
	return &Error{Code: Code(r.code), Op: op, Message: msg}
}

func cOpen(config string) (*C.perfsink_sink, error) {
	r := C.gops_open(cString(config), C.size_t(len(config)))
	return r.sink, result("open", &r)
}

func cOpenEnv() (*C.perfsink_sink, error) {
	r := C.gops_open_env()
	return r.sink, result("open", &r)
}

func cFlush(s *C.perfsink_sink, timeout time.Duration) error {
	ms := timeout.Milliseconds()
	switch {
	case ms < 0:
		ms = 0
	case ms > int64(^uint32(0)):
		ms = int64(^uint32(0))
	}
	r := C.gops_flush(s, C.uint32_t(ms))
	return result("flush", &r)
}

func cStats(s *C.perfsink_sink) (Stats, error) {
	var st C.perfsink_stats
	r := C.gops_stats(s, &st)
	return statsFrom(&st), result("stats", &r)
}

func cClose(s *C.perfsink_sink) (Stats, error) {
	var st C.perfsink_stats
	r := C.gops_close(s, &st)
	return statsFrom(&st), result("close", &r)
}

func cLastWriteError(s *C.perfsink_sink) string {
	var n C.size_t
	p := C.gops_last_write_error(s, &n)
	if p == nil {
		return ""
	}
	defer C.free(unsafe.Pointer(p))
	return C.GoStringN(p, C.int(n))
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
	}
}

// Version is the engine's version ("0.1.0").
func Version() string { return C.GoString(C.perfsink_version()) }

// String is the code's C name, such as "PERFSINK_TIMEOUT".
func (c Code) String() string { return C.GoString(C.perfsink_result_name(C.uint32_t(c))) }

func cRegister(s *C.perfsink_sink, m *C.char, mLen int, tags []C.perfsink_tag, vf *C.char, vfLen int) (SeriesID, error) {
	r := C.gops_register(s, m, C.size_t(mLen), sliceData(tags), C.size_t(len(tags)), vf, C.size_t(vfLen))
	return SeriesID(r.series), result("register series", &r)
}

func cSubmit(s *C.perfsink_sink, pts []C.perfsink_point) (int, error) {
	r := C.gops_submit(s, sliceData(pts), C.size_t(len(pts)))
	return int(r.accepted), result("submit", &r)
}

func cRecord(s *C.perfsink_sink, m *C.char, mLen int, tags []C.perfsink_tag, fields []C.perfsink_field, ts int64) error {
	r := C.gops_record(s, m, C.size_t(mLen), sliceData(tags), C.size_t(len(tags)),
		sliceData(fields), C.size_t(len(fields)), C.int64_t(ts))
	return result("record", &r)
}

// sliceData is &s[0], or nil for an empty slice (the ABI takes NULL with a zero count).
func sliceData[T any](s []T) *T {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}
