package perfsink_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	perfsink "github.com/perfsink/perfsink/go-shim"
	"github.com/perfsink/perfsink/go-shim/internal/influxtest"
)

var _ io.Closer = (*perfsink.Sink)(nil)

func open(t *testing.T, kv map[string]string) *perfsink.Sink {
	t.Helper()
	s, err := perfsink.Open(perfsink.ConfigString(kv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestVersion(t *testing.T) {
	if v := perfsink.Version(); v != "0.1.0" {
		t.Fatalf("Version() = %q", v)
	}
	if s := perfsink.CodeTimeout.String(); s != "PERFSINK_TIMEOUT" {
		t.Fatalf("CodeTimeout.String() = %q", s)
	}
	if s := perfsink.Code(9999).String(); s != "PERFSINK_UNKNOWN" {
		t.Fatalf("Code(9999).String() = %q", s)
	}
	if s := perfsink.CodeUndelivered.String(); s != "PERFSINK_UNDELIVERED" {
		t.Fatalf("CodeUndelivered.String() = %q", s)
	}
	// Written for 1.1 (SetSeriesKind); any later 1.x library serves it.
	if major, minor := perfsink.ABIVersion(); major != 1 || minor < 1 {
		t.Fatalf("ABIVersion() = %d.%d", major, minor)
	}
}

func TestConfigString(t *testing.T) {
	got := perfsink.ConfigString(map[string]string{"PERFSINK_TAGS": `a=1;b\2`, "INFLUXDB_URL": "http://h:1"})
	if want := `INFLUXDB_URL=http://h:1;PERFSINK_TAGS=a=1\;b\\2`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestOpenErrorCarriesCodeAndMessage(t *testing.T) {
	_, err := perfsink.Open("PERFSINK_BATCH_LINES=many")
	var pe *perfsink.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *perfsink.Error, got %T %v", err, err)
	}
	if pe.Code != perfsink.CodeConfig || !errors.Is(err, perfsink.CodeConfig) {
		t.Fatalf("code %v, want CodeConfig", pe.Code)
	}
	if pe.Message == "" || pe.Op != "open" {
		t.Fatalf("empty message or wrong op: %+v", pe)
	}
	t.Log(err)
	_, err = perfsink.Open("PERFSINK_NO_SUCH_KEY=1")
	if !errors.Is(err, perfsink.CodeConfig) {
		t.Fatalf("unknown key: %v", err)
	}
}

// Many goroutines fail concurrently with different errors; each must see its own message,
// however the goroutines migrate between OS threads.
func TestErrorMessagesPerCall(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				v := fmt.Sprintf("x%d_%d", i, j)
				_, err := perfsink.Open("PERFSINK_BATCH_LINES=" + v)
				var pe *perfsink.Error
				if !errors.As(err, &pe) || pe.Code != perfsink.CodeConfig {
					t.Errorf("want a config error, got %v", err)
					return
				}
				if !contains(pe.Message, v) {
					t.Errorf("message %q does not name %q", pe.Message, v)
					return
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// Without INFLUXDB_URL the engine is disabled: everything succeeds and nothing is sent.
func TestDisabledSink(t *testing.T) {
	s := open(t, nil)
	if on, err := s.Enabled(); on || err != nil {
		t.Fatalf("Enabled() = %v, %v", on, err)
	}
	id, err := s.RegisterSeries("m", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Submit([]perfsink.Point{{Series: id, Value: 1}})
	if err != nil || n != 1 {
		t.Fatalf("submit: %d %v", n, err)
	}
	if err := s.Flush(time.Second); err != nil {
		t.Fatal(err)
	}
}

// SetSeriesKind only adapts types: the engine's answers come back as codes.
func TestSetSeriesKind(t *testing.T) {
	s := open(t, nil)
	id, err := s.RegisterSeries("m", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []perfsink.MetricKind{perfsink.MetricCounter, perfsink.MetricGauge, perfsink.MetricTrend, perfsink.MetricRate} {
		if err := s.SetSeriesKind(id, k); err != nil {
			t.Fatalf("kind %d: %v", k, err)
		}
	}
	if err := s.SetSeriesKind(id+1, perfsink.MetricRate); !errors.Is(err, perfsink.CodeUnknownSeries) {
		t.Fatalf("unknown series: %v", err)
	}
	if err := s.SetSeriesKind(id, perfsink.MetricRate+1); !errors.Is(err, perfsink.CodeInvalidArgument) {
		t.Fatalf("unknown kind: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSeriesKind(id, perfsink.MetricRate); !errors.Is(err, perfsink.CodeClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestClosedSink(t *testing.T) {
	s := open(t, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.RegisterSeries("m", nil, ""); !errors.Is(err, perfsink.CodeClosed) {
		t.Fatalf("register after close: %v", err)
	}
	b := perfsink.NewBatch()
	b.Add(perfsink.Point{Value: 1})
	if _, err := s.SubmitBatch(b); !errors.Is(err, perfsink.CodeClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	if b.Len() != 0 {
		t.Fatal("SubmitBatch must empty the batch")
	}
	if err := s.Flush(time.Millisecond); !errors.Is(err, perfsink.CodeClosed) {
		t.Fatalf("flush after close: %v", err)
	}
	if _, err := s.Enabled(); !errors.Is(err, perfsink.CodeClosed) {
		t.Fatalf("enabled after close: %v", err)
	}
}

// The whole API against a real InfluxDB: series + batches, typed fields, record, flush,
// stats, close; then the exact rows are read back.
func TestRoundTrip(t *testing.T) {
	influx := influxtest.Start(t)
	s := open(t, map[string]string{
		"INFLUXDB_URL":                      influx.URL + "/gotest",
		"PERFSINK_SELF_METRICS_INTERVAL_MS": "0",
		"PERFSINK_FLUSH_INTERVAL_MS":        "50",
	})
	id, err := s.RegisterSeries("http_req_duration", []perfsink.Tag{{"method", "GET"}, {"status", "200"}, {"group", ""}}, "")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := s.RegisterSeries("http_req_duration", []perfsink.Tag{{"status", "200"}, {"method", "GET"}}, "")
	if err != nil || id2 != id {
		t.Fatalf("re-registering gave %d (%v), want %d", id2, err, id)
	}
	base := time.Unix(1_700_000_000, 0)
	url := perfsink.NewFieldSet(perfsink.String("url", "https://example.com/a b,c=d\"e"))
	var pts []perfsink.Point
	for i := range 1000 {
		pts = append(pts, perfsink.Point{
			Series: id, Value: float64(i) + 0.5, Time: base.Add(time.Duration(i) * time.Millisecond),
			Shared: url,
			Fields: []perfsink.Field{perfsink.Int("vu", int64(i%10)), perfsink.Bool("ok", i%2 == 0),
				perfsink.Uint("bytes", uint64(i)), perfsink.Float("f", 1.25), perfsink.String("s", fmt.Sprint("v", i))},
		})
	}
	if n, err := s.Submit(pts); err != nil || n != 1000 {
		t.Fatalf("submit: %d %v", n, err)
	}
	// A NaN is refused and counted; the other point of the batch is taken.
	n, err := s.Submit([]perfsink.Point{{Series: id, Value: math.NaN(), Time: base}, {Series: id, Value: 7, Time: base.Add(time.Hour)}})
	if n != 1 || !errors.Is(err, perfsink.CodeInvalidValue) {
		t.Fatalf("NaN batch: %d %v", n, err)
	}
	if _, err := s.Submit([]perfsink.Point{{Series: 999, Value: 1}}); !errors.Is(err, perfsink.CodeUnknownSeries) {
		t.Fatalf("unknown series: %v", err)
	}
	err = s.Record("workflow_step", []perfsink.Tag{{"step", "login"}, {"status", "success"}},
		[]perfsink.Field{perfsink.Float("duration", 0), perfsink.Int("success_count", 1)}, base)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Record("workflow_step", nil, nil, time.Time{}); !errors.Is(err, perfsink.CodeInvalidInput) {
		t.Fatalf("record without fields: %v", err)
	}
	if err := s.Flush(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Written != 1002 || st.RejectedInvalid < 2 || st.Series != 2 {
		t.Fatalf("stats: %+v", st)
	}
	if e := s.LastWriteError(); e != "" {
		t.Fatalf("LastWriteError = %q", e)
	}
	final, err := s.CloseStats()
	if err != nil || final.Written != 1002 {
		t.Fatalf("close: %+v %v", final, err)
	}
	if again, _ := s.Stats(); again != final {
		t.Fatal("Stats after close must be the final counters")
	}

	if got := influx.Count(t, "gotest", "http_req_duration", "value"); got != 1001 {
		t.Fatalf("count = %d, want 1001", got)
	}
	types := influx.FieldTypes(t, "gotest", "http_req_duration")
	want := map[string]string{"value": "float", "url": "string", "vu": "integer", "ok": "boolean",
		"bytes": "integer", "f": "float", "s": "string"}
	if !equalMaps(types, want) {
		t.Fatalf("field types %v, want %v", types, want)
	}
	if keys := influx.TagKeys(t, "gotest", "http_req_duration"); fmt.Sprint(keys) != "[method status]" {
		t.Fatalf("tag keys %v (the empty group tag must be omitted)", keys)
	}
	rows := influx.Rows(t, "gotest", "http_req_duration")
	r := rows[3]
	if r["time"].(json.Number).String() != fmt.Sprint(base.Add(3*time.Millisecond).UnixNano()) ||
		r["value"].(json.Number).String() != "3.5" || r["url"] != "https://example.com/a b,c=d\"e" ||
		r["vu"].(json.Number).String() != "3" || r["ok"] != false || r["s"] != "v3" || r["method"] != "GET" {
		t.Fatalf("row 3: %v", r)
	}
	steps := influx.Rows(t, "gotest", "workflow_step")
	if len(steps) != 1 || steps[0]["step"] != "login" || steps[0]["success_count"].(json.Number).String() != "1" {
		t.Fatalf("workflow_step rows: %v", steps)
	}
	if ft := influx.FieldTypes(t, "gotest", "workflow_step"); ft["duration"] != "float" {
		t.Fatalf("duration must be a float field: %v", ft)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Many goroutines share one sink; Close waits for calls in flight. Run with -race.
func TestConcurrentUse(t *testing.T) {
	influx := influxtest.Start(t)
	s := open(t, map[string]string{
		"INFLUXDB_URL":                      influx.URL,
		"INFLUXDB_DB":                       "conc",
		"PERFSINK_SELF_METRICS_INTERVAL_MS": "0",
	})
	const workers, per = 8, 2000
	var wg sync.WaitGroup
	base := time.Unix(1_700_000_000, 0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := s.RegisterSeries("m", []perfsink.Tag{{"worker", fmt.Sprint(w)}}, "")
			if err != nil {
				t.Error(err)
				return
			}
			b := perfsink.NewBatch()
			defer b.Free()
			for i := range per {
				b.Add(perfsink.Point{Series: id, Value: float64(i), Time: base.Add(time.Duration(i)),
					Fields: []perfsink.Field{perfsink.String("note", fmt.Sprint("n", i))}})
				if b.Len() == 100 {
					if _, err := s.SubmitBatch(b); err != nil {
						t.Error(err)
						return
					}
					runtime.GC()
				}
			}
			if _, err := s.SubmitBatch(b); err != nil {
				t.Error(err)
			}
			_, _ = s.Stats()
		}()
	}
	wg.Wait()
	st, err := s.CloseStats()
	if err != nil || st.Written != workers*per {
		t.Fatalf("close: %+v %v", st, err)
	}
	if got := influx.Count(t, "conc", "m", "value"); got != workers*per {
		t.Fatalf("count = %d", got)
	}
}

// A sink dropped without Close is closed by the garbage collector, which delivers its points
// (the flush interval is far too long for them to have been sent otherwise).
func TestLeakedSinkIsClosed(t *testing.T) {
	influx := influxtest.Start(t)
	before := perfsink.LeakedClosed()
	func() {
		s, err := perfsink.Open(perfsink.ConfigString(map[string]string{
			"INFLUXDB_URL":                      influx.URL + "/leak",
			"PERFSINK_FLUSH_INTERVAL_MS":        "600000",
			"PERFSINK_SELF_METRICS_INTERVAL_MS": "0",
		}))
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.RegisterSeries("leaked", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Submit([]perfsink.Point{{Series: id, Value: 1}, {Series: id, Value: 2}}); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for perfsink.LeakedClosed() == before {
		if time.Now().After(deadline) {
			t.Fatal("the leaked sink was not closed")
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	if got := influx.Count(t, "leak", "leaked", "value"); got != 2 {
		t.Fatalf("count = %d, want 2", got)
	}
}

func TestOpenEnv(t *testing.T) {
	t.Setenv("INFLUXDB_URL", "")
	t.Setenv("PERFSINK_BATCH_LINES", "lots")
	if _, err := perfsink.OpenEnv(); !errors.Is(err, perfsink.CodeConfig) {
		t.Fatalf("OpenEnv with a bad PERFSINK_BATCH_LINES: %v", err)
	}
	t.Setenv("PERFSINK_BATCH_LINES", "100")
	s, err := perfsink.OpenEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Close racing with calls on other goroutines: each call either completes or reports
// CodeClosed; none touches a freed handle (run with -race and GOEXPERIMENT=cgocheck2).
func TestCloseWhileInUse(t *testing.T) {
	s := open(t, nil)
	id, err := s.RegisterSeries("m", []perfsink.Tag{{"k", "v"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; ; i++ {
				_, err := s.Submit([]perfsink.Point{{Series: id, Value: float64(i), Fields: []perfsink.Field{perfsink.String("s", "x")}}})
				if err == nil {
					err = s.Record("r", nil, []perfsink.Field{perfsink.Int("n", int64(i))}, time.Time{})
				}
				if err != nil {
					if !errors.Is(err, perfsink.CodeClosed) {
						t.Errorf("unexpected error: %v", err)
					}
					return
				}
			}
		}()
	}
	close(start)
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// InfluxDB never answers: Close gives up after PERFSINK_CLOSE_TIMEOUT_MS and says so
// (CodeUndelivered, the same on a second Close), with the counts and the write error.
func TestCloseReportsUndeliveredPoints(t *testing.T) {
	null := influxtest.StartNull(t)
	addr := null.URL
	null.Close() // nothing listens there any more
	s, err := perfsink.Open(perfsink.ConfigString(map[string]string{
		"INFLUXDB_URL":                      addr + "/gone",
		"PERFSINK_CLOSE_TIMEOUT_MS":         "300",
		"PERFSINK_CREATE_DATABASE":          "false",
		"PERFSINK_SELF_METRICS_INTERVAL_MS": "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if on, err := s.Enabled(); !on || err != nil {
		t.Fatalf("Enabled() = %v, %v", on, err)
	}
	if err := s.Record("m", nil, []perfsink.Field{perfsink.Int("n", 1), perfsink.Int("k", 2)}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	err = s.Record("m", nil, []perfsink.Field{perfsink.Int("n", 1), perfsink.Int("n", 2)}, time.Time{})
	if !errors.Is(err, perfsink.CodeInvalidInput) {
		t.Fatalf("a repeated field key: %v", err)
	}
	r, err := s.CloseReport()
	if !errors.Is(err, perfsink.CodeUndelivered) {
		t.Fatalf("close: %v", err)
	}
	if r.Delivered || r.DroppedUndelivered != 1 || r.Written != 0 || r.RejectedInvalid != 1 || r.LastWriteError == "" {
		t.Fatalf("report %+v", r)
	}
	if _, again := s.CloseReport(); !errors.Is(again, perfsink.CodeUndelivered) {
		t.Fatalf("second close: %v", again)
	}
	if e := s.LastWriteError(); e != r.LastWriteError {
		t.Fatalf("LastWriteError after close = %q, want %q", e, r.LastWriteError)
	}
	t.Log(err, "; ", r.LastWriteError)
}

// SubmitBatch allocates nothing per call once the batch is warm (its outputs live in the
// batch's C memory), also when points are refused.
func TestSubmitBatchAllocatesNothing(t *testing.T) {
	s := open(t, nil)
	id, err := s.RegisterSeries("m", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	b := perfsink.NewBatch()
	defer b.Free()
	fs := perfsink.NewFieldSet(perfsink.Int("vu", 1))
	allocs := testing.AllocsPerRun(100, func() {
		for i := range 64 {
			b.AddShared(id, float64(i), 1, fs)
		}
		if _, err := s.SubmitBatch(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per SubmitBatch", allocs)
	}
}
