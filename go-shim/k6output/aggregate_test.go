package k6output

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/perfsink/perfsink/go-shim/internal/influxtest"
)

// PERFSINK_MODE=aggregate through the output: each k6 metric type, taken from the metric
// (custom names, so that no name table can guess it), lands as <metric>_agg points with its
// type's statistics in a real InfluxDB, and the engine's stats count the samples.
func TestAggregatedSchemaInInfluxDB(t *testing.T) {
	influx := influxtest.Start(t)
	o, err := New(Params{
		ConfigArgument: influx.URL + "/k6agg",
		Environment: map[string]string{
			"PERFSINK_MODE":                     "aggregate",
			"PERFSINK_SELF_METRICS_INTERVAL_MS": "0",
		},
		Logger: &logRecorder{},
	}, walkSlice)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	counter := &testMetric{"my_counter", Counter}
	rate := &testMetric{"my_rate", Rate}
	gauge := &testMetric{"my_gauge", Gauge}
	trend := &testMetric{"my_trend", Trend}
	tags := &testTags{map[string]string{"name": "a b,c=d"}}
	base := time.Unix(1_700_000_000, 0) // a multiple of the 1 s interval
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	var samples []Sample
	add := func(m *testMetric, ms int, v float64) {
		samples = append(samples, Sample{Metric: m, Tags: tags, Time: at(ms), Value: v})
	}
	for i, v := range []float64{2, 3, 0.5} {
		add(counter, 10*i, v)
	}
	for i, v := range []float64{1, 0, 1, 1} {
		add(rate, 10*i, v)
	}
	add(gauge, 100, 5)
	add(gauge, 300, 7) // the latest timestamp, sent before an earlier one
	add(gauge, 200, 6)
	for i := 10; i >= 1; i-- {
		add(trend, i, float64(i))
	}
	o.AddMetricSamples([][]Sample{samples})
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	rep := o.Report()
	if rep.Engine.Aggregated != uint64(len(samples)) || rep.Engine.Written != 4 || rep.Engine.AggregatedLate != 0 || rep.Lost() != 0 {
		t.Fatalf("report %+v: want %d samples aggregated into 4 points", rep, len(samples))
	}

	const db = "k6agg"
	if got := strings.Join(influx.Measurements(t, db), ","); got != "my_counter_agg,my_gauge_agg,my_rate_agg,my_trend_agg" {
		t.Fatalf("measurements %s", got)
	}
	want := map[string]string{
		"my_counter_agg": "count=3 sum=5.5",
		"my_rate_agg":    "count=4 passes=3 rate=0.75",
		"my_gauge_agg":   "count=3 last=7 max=7 min=5",
		"my_trend_agg":   "count=10 max=10 mean=5.5 min=1 p50=5 p90=9 p95=10 p99=10 sum=55",
	}
	for m, fields := range want {
		rows := influx.Rows(t, db, m)
		if len(rows) != 1 {
			t.Fatalf("%s: %d points %v", m, len(rows), rows)
		}
		row := rows[0]
		if fmt.Sprint(row["time"]) != fmt.Sprint(base.UnixNano()) || row["name"] != "a b,c=d" || row["instance"] == nil {
			t.Errorf("%s: time and tags %v", m, row)
		}
		var got []string
		for k, v := range row {
			if k != "time" && k != "name" && k != "instance" {
				got = append(got, fmt.Sprintf("%s=%v", k, v))
			}
		}
		sort.Strings(got)
		if strings.Join(got, " ") != fields {
			t.Errorf("%s: fields %s, want %s", m, strings.Join(got, " "), fields)
		}
	}
	if ft := influx.FieldTypes(t, db, "my_rate_agg"); fmt.Sprint(ft) != "map[count:integer passes:integer rate:float]" {
		t.Errorf("my_rate_agg field types %v", ft)
	}
}
