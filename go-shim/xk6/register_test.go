package xk6_test

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"go.k6.io/k6/ext"
	"go.k6.io/k6/metrics"
	"go.k6.io/k6/output"

	"github.com/perfsink/perfsink/go-shim/internal/influxtest"
	"github.com/perfsink/perfsink/go-shim/k6output"
	_ "github.com/perfsink/perfsink/go-shim/xk6"
)

// constructor is what k6 finds under --out perfsink.
func constructor(t testing.TB) output.Constructor {
	t.Helper()
	e, ok := ext.Get(ext.OutputExtension)["perfsink"]
	if !ok {
		t.Fatal(`no output extension "perfsink" registered`)
	}
	c, ok := e.Module.(output.Constructor)
	if !ok {
		t.Fatalf("the registered module is a %T, not an output.Constructor", e.Module)
	}
	return c
}

// testLogger is a real logrus logger, as k6 hands its outputs (Params.Logger is a
// logrus.FieldLogger): every entry goes to the test log, warnings are kept.
type testLogger struct {
	*logrus.Logger
	hook *warnHook
}

type warnHook struct {
	t  testing.TB
	mu sync.Mutex
	w  []string
}

func (h *warnHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *warnHook) Fire(e *logrus.Entry) error {
	h.t.Logf("%s: %s", e.Level, e.Message)
	if e.Level <= logrus.WarnLevel {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.w = append(h.w, e.Message)
	}
	return nil
}

func (h *warnHook) warnings() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.w...)
}

func newTestLogger(t testing.TB) testLogger {
	l := logrus.New()
	l.SetOutput(io.Discard) // the hook shows every entry in the test log
	l.SetLevel(logrus.DebugLevel)
	h := &warnHook{t: t}
	l.AddHook(h)
	return testLogger{Logger: l, hook: h}
}

// k6's HTTP trail metrics, in its order.
var (
	httpReqs    = &metrics.Metric{Name: "http_reqs", Type: metrics.Counter}
	httpMetrics = []*metrics.Metric{httpReqs,
		{Name: "http_req_duration", Type: metrics.Trend}, {Name: "http_req_blocked", Type: metrics.Trend},
		{Name: "http_req_connecting", Type: metrics.Trend}, {Name: "http_req_tls_handshaking", Type: metrics.Trend},
		{Name: "http_req_sending", Type: metrics.Trend}, {Name: "http_req_waiting", Type: metrics.Trend},
		{Name: "http_req_receiving", Type: metrics.Trend}}
	vus        = &metrics.Metric{Name: "vus", Type: metrics.Gauge}
	vusMax     = &metrics.Metric{Name: "vus_max", Type: metrics.Gauge}
	iterations = &metrics.Metric{Name: "iterations", Type: metrics.Counter}
	checks     = &metrics.Metric{Name: "checks", Type: metrics.Rate}
)

// trail is an HTTP request as k6 emits it: a ConnectedSamples of 8 samples sharing one
// *TagSet and one time, with vu/iter in the metadata (when those system tags are enabled).
func trail(tags *metrics.TagSet, t time.Time, md map[string]string, dur float64) metrics.ConnectedSamples {
	cs := metrics.ConnectedSamples{Tags: tags, Time: t, Samples: make([]metrics.Sample, len(httpMetrics))}
	for i, m := range httpMetrics {
		v := dur / float64(i+1)
		if m == httpReqs {
			v = 1
		}
		cs.Samples[i] = metrics.Sample{TimeSeries: metrics.TimeSeries{Metric: m, Tags: tags}, Time: t, Value: v, Metadata: md}
	}
	return cs
}

func TestRegistered(t *testing.T) {
	o, err := constructor(t)(output.Params{OutputType: "perfsink", ConfigArgument: "http://influx:8086/mydb"})
	if err != nil {
		t.Fatal(err)
	}
	if d := o.Description(); d != "perfsink (http://influx:8086, db mydb)" {
		t.Fatalf("Description() = %q", d)
	}
	if _, err := constructor(t)(output.Params{ConfigArgument: "udp://influx:8089"}); err == nil {
		t.Fatal("a UDP address must be refused")
	}
}

// The k6 lifecycle through the stand-in, exactly as k6 drives an output: constructor, Start,
// AddMetricSamples every 50 ms from one goroutine (the mix of containers k6 sends), Stop;
// then what landed in a real InfluxDB.
func TestK6Lifecycle(t *testing.T) {
	influx := influxtest.Start(t)
	log := newTestLogger(t)
	o, err := constructor(t)(output.Params{
		OutputType:     "perfsink",
		ConfigArgument: influx.URL + "/xk6?tagsAsFields=vu:int&tagsAsFields=iter:int&tagsAsFields=url",
		JSONConfig:     []byte(`{"pushInterval": "200ms", "PERFSINK_TAGS": "testid=run1"}`),
		Environment:    map[string]string{"PERFSINK_SELF_METRICS_INTERVAL_MS": "0", "K6_INFLUXDB_DB": "ignored-by-url"},
		Logger:         log.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}

	reg := metrics.NewRegistry()
	root := reg.RootTagSet()
	run := root.With("scenario", "default")
	var urls []*metrics.TagSet
	for u := range 4 {
		urls = append(urls, run.WithTagsFromMap(map[string]string{
			"method": "GET", "status": "200", "proto": "HTTP/1.1", "group": "", "expected_response": "true",
			"name": fmt.Sprintf("https://test.k6.io/p%d", u), "url": fmt.Sprintf("https://test.k6.io/p%d", u),
		}))
	}
	checkTags := run.With("check", "is 200").With("group", "")
	if again := run.With("check", "is 200").With("group", ""); again != checkTags {
		t.Fatal("the stand-in must intern tag sets like k6")
	}

	base := time.Unix(1_700_000_000, 0)
	const ticks, reqsPerTick = 10, 7
	req := 0
	stopTicker := time.NewTicker(50 * time.Millisecond)
	defer stopTicker.Stop()
	for tick := range ticks {
		<-stopTicker.C
		var batch []metrics.SampleContainer
		for range reqsPerTick {
			ts := base.Add(time.Duration(req) * time.Millisecond)
			md := map[string]string{"vu": fmt.Sprint(1 + req%3), "iter": fmt.Sprint(req / 3)}
			batch = append(batch, trail(urls[req%len(urls)], ts, md, 100+float64(req)))
			batch = append(batch, metrics.Samples{
				{TimeSeries: metrics.TimeSeries{Metric: checks, Tags: checkTags}, Time: ts, Value: 1, Metadata: md},
				{TimeSeries: metrics.TimeSeries{Metric: iterations, Tags: run}, Time: ts, Value: 1, Metadata: md},
			})
			req++
		}
		// vus and vus_max: one ConnectedSamples with the run tags; and a bare Sample.
		ts := base.Add(time.Duration(tick) * time.Second)
		batch = append(batch, metrics.ConnectedSamples{Tags: run, Time: ts, Samples: []metrics.Sample{
			{TimeSeries: metrics.TimeSeries{Metric: vus, Tags: run}, Time: ts, Value: 3},
		}})
		batch = append(batch, metrics.Sample{TimeSeries: metrics.TimeSeries{Metric: vusMax, Tags: root}, Time: ts, Value: 3})
		o.AddMetricSamples(batch)
	}
	o.AddMetricSamples(nil) // k6's last call may be empty
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}

	rep := o.(*k6output.Output[metrics.SampleContainer]).Report()
	total := ticks * reqsPerTick
	want := uint64(total*(len(httpMetrics)+2) + 2*ticks)
	if rep.Samples != want || rep.Engine.Written != want || rep.Lost() != 0 {
		t.Fatalf("report %+v, want %d samples written", rep, want)
	}
	if wantSeries := uint64(len(urls)*len(httpMetrics) + 4); rep.Series != wantSeries {
		t.Fatalf("%d series registered, want %d", rep.Series, wantSeries)
	}

	const db = "xk6"
	for _, m := range httpMetrics {
		if got := influx.Count(t, db, m.Name, "value"); got != int64(total) {
			t.Errorf("%s: %d points, want %d", m.Name, got, total)
		}
	}
	for m, n := range map[string]int{"checks": total, "iterations": total, "vus": ticks, "vus_max": ticks} {
		if got := influx.Count(t, db, m, "value"); got != int64(n) {
			t.Errorf("%s: %d points, want %d", m, got, n)
		}
	}
	if got := strings.Join(influx.TagKeys(t, db, "http_req_duration"), ","); got != "expected_response,method,name,proto,scenario,status,testid" {
		t.Errorf("http_req_duration tag keys %q", got)
	}
	if got := strings.Join(influx.TagKeys(t, db, "vus_max"), ","); got != "testid" {
		t.Errorf("vus_max tag keys %q", got)
	}
	types := influx.FieldTypes(t, db, "http_req_duration")
	if fmt.Sprint(types) != "map[iter:integer url:string value:float vu:integer]" {
		t.Errorf("field types %v", types)
	}
	if types := influx.FieldTypes(t, db, "checks"); fmt.Sprint(types) != "map[iter:integer value:float vu:integer]" {
		t.Errorf("checks field types %v", types)
	}
	rows := influx.Rows(t, db, "http_reqs")
	if len(rows) != total || fmt.Sprint(rows[5]["value"]) != "1" || fmt.Sprint(rows[5]["iter"]) != "1" ||
		fmt.Sprint(rows[5]["vu"]) != "3" || rows[5]["url"] != "https://test.k6.io/p1" || rows[5]["testid"] != "run1" {
		t.Errorf("http_reqs row 5: %v", rows[5])
	}
	if w := log.hook.warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}
