package k6output

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perfsink/perfsink/go-shim/internal/influxtest"
)

// Local stand-ins of k6's types, as the xk6 glue adapts them.

type testMetric struct {
	name string
	typ  MetricType
}

func (m *testMetric) MetricName() string     { return m.name }
func (m *testMetric) MetricType() MetricType { return m.typ }

type testTags struct{ m map[string]string }

func (t *testTags) Map() map[string]string {
	out := make(map[string]string, len(t.m))
	for k, v := range t.m {
		out[k] = v
	}
	return out
}

// A container is a slice of samples (k6: metrics.Samples, an HTTP trail, ...).
func walkSlice(c []Sample, f *Feed) {
	for _, s := range c {
		f.Add(s)
	}
}

var httpMetrics = func() []*testMetric {
	var ms []*testMetric
	ms = append(ms, &testMetric{"http_reqs", Counter})
	for _, n := range []string{"http_req_duration", "http_req_blocked", "http_req_connecting",
		"http_req_tls_handshaking", "http_req_sending", "http_req_waiting", "http_req_receiving"} {
		ms = append(ms, &testMetric{n, Trend})
	}
	return ms
}()

// trail is an HTTP request's 8 samples: one tag set, one time, as k6's httpext.Trail.
func trail(tags TagSet, t time.Time, md map[string]string, v float64) []Sample {
	out := make([]Sample, len(httpMetrics))
	for i, m := range httpMetrics {
		val := v + float64(i)
		if i == 0 {
			val = 1
		}
		out[i] = Sample{Metric: m, Tags: tags, Time: t, Value: val, Metadata: md}
	}
	return out
}

type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) add(level, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(format, args...))
}
func (l *logRecorder) Debugf(f string, a ...any) { l.add("debug", f, a...) }
func (l *logRecorder) Infof(f string, a ...any)  { l.add("info", f, a...) }
func (l *logRecorder) Warnf(f string, a ...any)  { l.add("warn", f, a...) }
func (l *logRecorder) Errorf(f string, a ...any) { l.add("error", f, a...) }
func (l *logRecorder) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// The output driven as k6 drives it (Start, a batch every 50 ms, Stop) against a real
// InfluxDB; then exact counts, tags, fields and field types are read back.
func TestRawSchemaInInfluxDB(t *testing.T) {
	influx := influxtest.Start(t)
	log := &logRecorder{}
	o, err := New(Params{
		ConfigArgument: influx.URL + "/k6raw?pushInterval=100ms",
		Environment: map[string]string{
			"K6_INFLUXDB_TAGS_AS_FIELDS":        "vu:int,iter:int,url,ok:bool,size:float,bad:int",
			"PERFSINK_SELF_METRICS_INTERVAL_MS": "0",
		},
		Logger: log,
	}, walkSlice)
	if err != nil {
		t.Fatal(err)
	}
	if d := o.Description(); d != "perfsink ("+influx.URL+", db k6raw)" {
		t.Fatalf("Description() = %q", d)
	}
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}

	const urls, rounds, perRound = 10, 6, 5 // 10 tag sets; 6 batches of 5 requests each
	var sets []TagSet
	for u := range urls {
		sets = append(sets, &testTags{map[string]string{
			"method": "GET", "status": "200", "proto": "HTTP/1.1", "scenario": "default",
			"name": fmt.Sprintf("https://test.k6.io/%d", u), "url": fmt.Sprintf("https://test.k6.io/%d?a=b c", u),
			"group": "", "ok": "true", "size": "12.5", "bad": "notanumber",
		}})
	}
	vus := &testMetric{"vus", Gauge}
	checks := &testMetric{"checks", Rate}
	checkTags := &testTags{map[string]string{"check": "status is 200", "group": "::login"}}
	base := time.Unix(1_700_000_000, 123456789)
	req := 0
	for r := range rounds {
		var batch [][]Sample
		for range perRound {
			ts := base.Add(time.Duration(req) * time.Millisecond)
			md := map[string]string{"vu": fmt.Sprint(1 + req%4), "iter": fmt.Sprint(req)}
			if req == 0 {
				md["trace_id"] = "abc123"
			}
			// Two requests in a row on each tag set (each with its own metadata), a check
			// after the second.
			batch = append(batch, trail(sets[req/2%urls], ts, md, float64(req)))
			if req%2 == 1 {
				batch = append(batch, []Sample{{Metric: checks, Tags: checkTags, Time: ts, Value: float64(req / 2 % 2), Metadata: md}})
			}
			req++
		}
		batch = append(batch, []Sample{{Metric: vus, Time: base.Add(time.Duration(r) * time.Second), Value: 4}})
		o.AddMetricSamples(batch)
		time.Sleep(50 * time.Millisecond)
	}
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := o.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	total := rounds * perRound
	rep := o.Report()
	wantSamples := uint64(total*len(httpMetrics) + total/2 + rounds)
	if rep.Samples != wantSamples || rep.Engine.Written != wantSamples || rep.Lost() != 0 || rep.Overflow != 0 {
		t.Fatalf("report %+v, want %d samples all written", rep, wantSamples)
	}
	if want := uint64(urls*len(httpMetrics) + 2); rep.Series != want {
		t.Fatalf("registered %d series, want %d (one per metric and tag set)", rep.Series, want)
	}
	if !strings.Contains(log.text(), fmt.Sprintf("info perfsink: %d samples, %[1]d written, 0 rejected", wantSamples)) {
		t.Fatalf("no delivery report in the log:\n%s", log.text())
	}

	const db = "k6raw"
	for _, m := range httpMetrics {
		if got := influx.Count(t, db, m.name, "value"); got != int64(total) {
			t.Errorf("%s: %d points, want %d", m.name, got, total)
		}
	}
	if got := influx.Count(t, db, "checks", "value"); got != int64(total/2) {
		t.Errorf("checks: %d points", got)
	}
	if got := influx.Count(t, db, "vus", "value"); got != rounds {
		t.Errorf("vus: %d points", got)
	}
	ms := influx.Measurements(t, db)
	if len(ms) != len(httpMetrics)+2 {
		t.Errorf("measurements %v", ms)
	}

	// Tags: sample tags minus tagsAsFields, empty values omitted.
	keys := influx.TagKeys(t, db, "http_req_duration")
	if got := strings.Join(keys, ","); got != "method,name,proto,scenario,status" {
		t.Errorf("tag keys %q", got)
	}
	if got := strings.Join(influx.TagKeys(t, db, "checks"), ","); got != "check,group" {
		t.Errorf("checks tag keys %q", got)
	}
	if keys := influx.TagKeys(t, db, "vus"); len(keys) != 0 {
		t.Errorf("vus tag keys %v", keys)
	}
	// Fields: value float, tagsAsFields typed (a value that does not parse stays a string,
	// as in k6), metadata vu/iter integers, other metadata strings.
	types := influx.FieldTypes(t, db, "http_req_duration")
	want := map[string]string{"value": "float", "url": "string", "ok": "boolean", "size": "float",
		"bad": "string", "vu": "integer", "iter": "integer", "trace_id": "string"}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("field types\n got %v\nwant %v", types, want)
	}
	if ft := influx.FieldTypes(t, db, "vus"); fmt.Sprint(ft) != "map[value:float]" {
		t.Errorf("vus field types %v", ft)
	}

	rows := influx.Rows(t, db, "http_req_duration")
	sort.Slice(rows, func(i, j int) bool { return rows[i]["time"].(json.Number) < rows[j]["time"].(json.Number) })
	r := rows[7]
	checkRow := map[string]string{
		"time": fmt.Sprint(base.Add(7 * time.Millisecond).UnixNano()), "value": "8", "vu": "4", "iter": "7",
		"url": "https://test.k6.io/3?a=b c", "name": "https://test.k6.io/3", "method": "GET", "ok": "true",
		"size": "12.5", "bad": "notanumber",
	}
	for k, v := range checkRow {
		if fmt.Sprint(r[k]) != v {
			t.Errorf("row 7 %s = %v, want %s (row %v)", k, r[k], v, r)
		}
	}
	if _, ok := r["group"]; ok {
		t.Errorf("empty tag group written: %v", r)
	}
	if rows[0]["trace_id"] != "abc123" {
		t.Errorf("row 0 trace_id = %v", rows[0]["trace_id"])
	}
	// Every point has its own sample's metadata: the samples of a request share one map,
	// which is converted once and then reused by reference, also across tag sets (checks).
	for _, m := range []string{"http_reqs", "http_req_blocked", "http_req_receiving", "checks"} {
		for _, r := range influx.Rows(t, db, m) {
			ns, _ := r["time"].(json.Number).Int64()
			req := int(time.Unix(0, ns).Sub(base) / time.Millisecond)
			want := fmt.Sprintf("vu=%d iter=%d trace_id=%v", 1+req%4, req, map[bool]any{true: "abc123", false: nil}[req == 0])
			if got := fmt.Sprintf("vu=%v iter=%v trace_id=%v", r["vu"], r["iter"], r["trace_id"]); got != want {
				t.Errorf("%s request %d: %s, want %s", m, req, got, want)
			}
		}
	}
}

// InfluxDB is down for the whole run: Start still succeeds (as k6's own output does), the
// engine retries, and Stop reports every sample as lost.
func TestDeliveryReportWhenInfluxDBIsDown(t *testing.T) {
	null := influxtest.StartNull(t)
	addr := null.URL
	null.Close() // nothing listens there any more
	log := &logRecorder{}
	o, err := New(Params{
		ConfigArgument: "K6_INFLUXDB_ADDR=" + addr + ";PERFSINK_CLOSE_TIMEOUT_MS=300;PERFSINK_SELF_METRICS_INTERVAL_MS=0;PERFSINK_CREATE_DATABASE=false",
		Logger:         log,
	}, walkSlice)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	tags := &testTags{map[string]string{"url": "u"}}
	o.AddMetricSamples([][]Sample{trail(tags, time.Now(), nil, 1)})
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	rep := o.Report()
	if rep.Samples != 8 || rep.Engine.Written != 0 || rep.Lost() != 8 {
		t.Fatalf("report %+v", rep)
	}
	if !strings.Contains(log.text(), "warn perfsink: 8 samples, 0 written") {
		t.Fatalf("log:\n%s", log.text())
	}
}

// Samples added before Start or after Stop are counted, never submitted.
func TestAddOutsideStartStop(t *testing.T) {
	o, err := New(Params{Environment: map[string]string{"INFLUXDB_URL": ""}}, walkSlice)
	if err != nil {
		t.Fatal(err)
	}
	tags := &testTags{}
	o.AddMetricSamples([][]Sample{trail(tags, time.Now(), nil, 1)})
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	o.AddMetricSamples([][]Sample{trail(tags, time.Now(), nil, 1)})
	o.Sync()
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	o.AddMetricSamples([][]Sample{trail(tags, time.Now(), nil, 1)})
	if rep := o.Report(); rep.Samples != 8 || rep.Overflow != 1 {
		t.Fatalf("report %+v", rep)
	}
}
