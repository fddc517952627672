package k6output

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The two k6 paths write the same line protocol: the same k6-shaped samples go through the Go
// output (as the xk6 glue feeds it) and through `perfsink k6` (whose k6 is a script that
// writes those samples as k6's JSON output), each into a capturing HTTP endpoint, and the
// bodies' lines must be equal. Needs the perfsink binary next to the static library
// (go-shim/test.sh builds both; $PERFSINK_BIN overrides the path).
func TestGoOutputAndPerfsinkK6WriteTheSameLines(t *testing.T) {
	bin := os.Getenv("PERFSINK_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "target", "release", "perfsink")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the perfsink binary is needed (cargo build --release --bin perfsink): %v", err)
	}
	bin, _ = filepath.Abs(bin)

	// Both paths read the same k6 configuration from the environment: tagsAsFields typed
	// entries of every kind, and the engine's keys.
	env := map[string]string{
		"K6_INFLUXDB_TAGS_AS_FIELDS":        "vu:int,iter:int,url,ok:bool,ratio:float,code:int",
		"PERFSINK_CREATE_DATABASE":          "false",
		"PERFSINK_SELF_METRICS_INTERVAL_MS": "0",
		"PERFSINK_GZIP_LEVEL":               "0",
		"INFLUXDB_VERSION":                  "1",
	}
	samples := agreeSamples()

	goLines := capture(t, func(url string) {
		e := map[string]string{"INFLUXDB_URL": url + "/k6"}
		for k, v := range env {
			e[k] = v
		}
		o, err := New(Params{Environment: e}, walkSlice)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Start(); err != nil {
			t.Fatal(err)
		}
		o.AddMetricSamples([][]Sample{samples})
		if err := o.Stop(); err != nil {
			t.Fatal(err)
		}
		if r := o.Report(); r.Samples != uint64(len(samples)) || r.Lost() != 0 {
			t.Fatalf("Go output: %s", r)
		}
	})

	rustLines := capture(t, func(url string) {
		dir := t.TempDir()
		fakeK6 := filepath.Join(dir, "k6")
		script := "#!/bin/sh\n# k6 run --out json=PATH ...: writes the prepared samples there.\n" +
			"for a; do case \"$a\" in json=*) out=\"${a#json=}\";; esac; done\n" +
			"cat \"$0.jsonl\" >\"$out\"\n"
		if err := os.WriteFile(fakeK6, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fakeK6+".jsonl", k6JSON(t, samples), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "k6", "--no-progress", "run", "script.js")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "PERFSINK_K6=" + fakeK6,
			"INFLUXDB_URL=" + url + "/k6"}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("perfsink k6: %v\n%s", err, out)
		}
	})

	if len(goLines) != len(samples) || len(rustLines) != len(samples) {
		t.Fatalf("%d samples: the Go output wrote %d lines, perfsink k6 %d\nGo:\n%s\nperfsink k6:\n%s",
			len(samples), len(goLines), len(rustLines), strings.Join(goLines, "\n"), strings.Join(rustLines, "\n"))
	}
	for i := range goLines {
		if goLines[i] != rustLines[i] {
			t.Errorf("line %d differs:\n    Go output: %s\n  perfsink k6: %s", i, goLines[i], rustLines[i])
		}
	}
	// The cases the samples are made of, each seen in what was written.
	all := strings.Join(goLines, "\n")
	for _, want := range []string{
		`my\ metric"q\x,`,                       // a name with a space, a quote and a backslash (1.x escaping)
		`vu=3i`, `iter=17i`, `iter=5i`, `vu=4i`, // metadata typed as integers, as tagsAsFields says
		`vu="abc"`,             // a vu that is not a number stays a string
		`ok=true`, `ratio=0.5`, // typed tagsAsFields
		`code="12x"`,               // an int tag that does not parse stays a string
		`url=""`,                   // an empty tagsAsFields value is an empty string field
		`trace_id="t\"1\\"`,        // other metadata: a string, escaped
		`name=we\ird\ "q"\ n\=ame`, // a tag value with backslash, quote, space, '='
		`k\=e\ y\,=v`,              // a tag key with '=', space, ','
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no line contains %s:\n%s", want, all)
		}
	}
	if strings.Contains(all, "group=") {
		t.Errorf("an empty tag was written:\n%s", all)
	}
}

// agreeSamples are k6-shaped samples with the cases the two paths must agree on.
func agreeSamples() []Sample {
	dur := &testMetric{"http_req_duration", Trend}
	odd := &testMetric{`my metric"q\x`, Counter}
	checks := &testMetric{"checks", Rate}
	full := &testTags{map[string]string{
		"method": "GET", "group": "", "url": "http://x/a b", "name": `we\ird "q" n=ame`,
		"ok": "true", "ratio": "0.5", "code": "12x", "k=e y,": "v",
	}}
	emptyURL := &testTags{map[string]string{"url": "", "scenario": "default", "code": "200"}}
	base := time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Millisecond) }
	return []Sample{
		{Metric: dur, Tags: full, Time: at(0), Value: 105.25, Metadata: map[string]string{"vu": "3", "iter": "17"}},
		{Metric: odd, Tags: full, Time: at(0), Value: 1, Metadata: map[string]string{"vu": "3", "iter": "17"}},
		{Metric: dur, Tags: full, Time: at(1), Value: 7, Metadata: map[string]string{"vu": "abc", "trace_id": `t"1\`}},
		// "url" is written from the tag set already; "value" is the sample's own field.
		{Metric: dur, Tags: emptyURL, Time: at(2), Value: 0.001, Metadata: map[string]string{"url": "m", "value": "9", "iter": "2"}},
		{Metric: checks, Tags: emptyURL, Time: at(3), Value: 0},
		{Metric: checks, Tags: nil, Time: at(4), Value: -3.5, Metadata: map[string]string{}},
		{Metric: checks, Tags: full, Time: at(5), Value: 1, Metadata: map[string]string{"iter": "5"}},
		{Metric: checks, Tags: full, Time: at(6), Value: 1, Metadata: map[string]string{"vu": "4", "value": "x"}},
	}
}

// k6JSON renders samples as k6's `--out json` does: a Metric line before a metric's first
// point, then one Point line per sample (encoding/json sorts map keys, as k6's output is).
func k6JSON(t *testing.T, samples []Sample) []byte {
	var b strings.Builder
	seen := map[Metric]bool{}
	line := func(v any) {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	types := map[MetricType]string{Counter: "counter", Gauge: "gauge", Trend: "trend", Rate: "rate"}
	for _, s := range samples {
		name := s.Metric.MetricName()
		if !seen[s.Metric] {
			seen[s.Metric] = true
			line(map[string]any{"type": "Metric", "metric": name, "data": map[string]any{
				"name": name, "type": types[s.Metric.MetricType()], "contains": "default",
				"thresholds": []string{}, "submetrics": nil,
			}})
		}
		data := map[string]any{"time": s.Time.Format(time.RFC3339Nano), "value": s.Value, "tags": map[string]string{}}
		if s.Tags != nil {
			data["tags"] = s.Tags.Map()
		}
		if s.Metadata != nil {
			data["metadata"] = s.Metadata
		}
		line(map[string]any{"type": "Point", "metric": name, "data": data})
	}
	return []byte(b.String())
}

// capture runs write against an HTTP endpoint that answers 204 and keeps the lines of every
// /write body, and returns them sorted.
func capture(t *testing.T, write func(url string)) []string {
	var mu sync.Mutex
	var lines []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/write" {
			var body io.Reader = r.Body
			if r.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				body = zr
			}
			sc := bufio.NewScanner(body)
			sc.Buffer(nil, 1<<20)
			mu.Lock()
			for sc.Scan() {
				if l := sc.Text(); l != "" {
					lines = append(lines, l)
				}
			}
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	write(srv.URL)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lines)
	return lines
}
