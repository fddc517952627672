package xk6_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"go.k6.io/k6/metrics"
	"go.k6.io/k6/output"

	"github.com/perfsink/perfsink/go-shim/internal/influxtest"
	"github.com/perfsink/perfsink/go-shim/k6output"
)

// BenchmarkK6Output measures the output end to end as k6 feeds it: AddMetricSamples with
// k6-shaped containers (HTTP trails: 8 samples sharing one *TagSet), the goroutine walking
// them, interning, building the batch, one cgo call per batch, and the engine encoding
// every point to line protocol, with the engine writing gzipped batches to a local HTTP
// server that answers 204. One op is one sample; ns/sample and allocs/sample are reported.
//
//	default:  k6's default system tags (url a tag, written as a field; no vu/iter metadata)
//	metadata: vu and iter system tags enabled (metadata, written as integer fields)
//	nofields: tagsAsFields empty (url stays a tag): points without extra fields
//	disabled: the engine disabled (no INFLUXDB_URL): the Go side (with the tag sets' fields)
//	          and the cgo calls; the engine reads nothing
//	disabled-nofields: the same without fields
//
// Besides wall time (which the machine's other load inflates) it reports CPU time per
// sample from /proc/self/task/*/schedstat: go-cpu-ns is every Go thread (the output, cgo,
// the engine's encoding, which runs in the submitting thread, and the Go runtime);
// writer-cpu-ns is the engine's writer thread (gzip, HTTP). The null server runs in a
// child process so that its CPU time is not counted.
func BenchmarkK6Output(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchOutput(b, false, true, "") })
	b.Run("metadata", func(b *testing.B) { benchOutput(b, true, true, "") })
	b.Run("nofields", func(b *testing.B) { benchOutput(b, false, true, ";K6_INFLUXDB_TAGS_AS_FIELDS=") })
	b.Run("disabled", func(b *testing.B) { benchOutput(b, false, false, "") })
	b.Run("disabled-nofields", func(b *testing.B) { benchOutput(b, false, false, ";K6_INFLUXDB_TAGS_AS_FIELDS=") })
}

func TestMain(m *testing.M) {
	influxtest.ServeNullIfAsked()
	os.Exit(m.Run())
}

func benchOutput(b *testing.B, withMeta, enabled bool, extraConfig string) {
	url := ""
	if enabled {
		url = influxtest.StartNullProcess(b)
	}
	o, err := constructor(b)(output.Params{
		OutputType: "perfsink",
		ConfigArgument: "INFLUXDB_URL=" + url + ";PERFSINK_CREATE_DATABASE=false;" +
			"PERFSINK_SELF_METRICS_INTERVAL_MS=0" + extraConfig,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := o.Start(); err != nil {
		b.Fatal(err)
	}
	out := o.(*k6output.Output[metrics.SampleContainer])

	// 100 URLs (tag sets) x 8 metrics = 800 series; 2000 distinct requests, fed as k6 does:
	// 125 requests (1000 samples) per AddMetricSamples, the 50 ms batch of a test doing
	// 2500 requests/s.
	const urls, requests, perCall = 100, 2000, 125
	root := metrics.NewRegistry().RootTagSet().With("scenario", "default")
	var sets []*metrics.TagSet
	for u := range urls {
		sets = append(sets, root.WithTagsFromMap(map[string]string{
			"method": "GET", "status": "200", "proto": "HTTP/2.0", "group": "", "expected_response": "true",
			"tls_version": "tls1.3", "name": fmt.Sprintf("https://test.k6.io/news.php?id=%d", u),
			"url": fmt.Sprintf("https://test.k6.io/news.php?id=%d", u),
		}))
	}
	base := time.Now()
	var calls [][]metrics.SampleContainer
	var cur []metrics.SampleContainer
	for r := range requests {
		var md map[string]string
		if withMeta {
			md = map[string]string{"vu": fmt.Sprint(1 + r%50), "iter": fmt.Sprint(r / 50)}
		}
		cur = append(cur, trail(sets[r%urls], base.Add(time.Duration(r)*time.Microsecond), md, 120.5+float64(r%17)))
		if len(cur) == perCall {
			calls = append(calls, cur)
			cur = nil
		}
	}
	const samplesPerCall = perCall * 8
	for _, c := range calls { // warm up: registers every series, grows the buffers
		o.AddMetricSamples(c)
	}
	out.Sync()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0, err := influxtest.ReadThreadCPU()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	samples := 0
	for i := 0; samples < b.N; i++ {
		o.AddMetricSamples(calls[i%len(calls)])
		samples += samplesPerCall
	}
	out.Sync()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu1, _ := influxtest.ReadThreadCPU()
	runtime.ReadMemStats(&after)
	cpu := cpu1.Sub(cpu0)
	n := float64(samples)
	b.ReportMetric(float64(elapsed.Nanoseconds())/n, "ns/sample")
	b.ReportMetric(float64(cpu.Go)/n, "go-cpu-ns/sample")
	b.ReportMetric(float64(cpu.Writer)/n, "writer-cpu-ns/sample")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/sample")
	if err := o.Stop(); err != nil {
		b.Fatal(err)
	}
	// The writer (one thread: gzip + HTTP) may fall behind a producer this fast on a busy
	// machine; the engine then drops what exceeds PERFSINK_MEMORY_MAX_BYTES, counted. That
	// is the writer's throughput, not the cost measured here, but it is reported.
	if rep := out.Report(); enabled && rep.Lost() != 0 {
		b.Logf("the writer fell behind: %s", rep)
	}
}
