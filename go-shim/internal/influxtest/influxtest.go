// Package influxtest starts throw-away InfluxDB 1.x servers (the Debian `influxd`) and null
// HTTP endpoints for the tests and benchmarks of the Go shim.
package influxtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a running influxd with its own data directory and loopback ports.
type Server struct {
	URL string // http://127.0.0.1:PORT
	dir string
}

// Binary is the influxd to run: $INFLUXD, or influxd on $PATH, or /usr/bin/influxd.
func Binary() (string, error) {
	if b := os.Getenv("INFLUXD"); b != "" {
		return b, nil
	}
	if b, err := exec.LookPath("influxd"); err == nil {
		return b, nil
	}
	if _, err := os.Stat("/usr/bin/influxd"); err == nil {
		return "/usr/bin/influxd", nil
	}
	return "", fmt.Errorf("influxd not found (install the Debian package influxdb, or set INFLUXD)")
}

var listening = regexp.MustCompile(`Listening on HTTP.*addr=127\.0\.0\.1:(\d+)`)

// Start runs influxd until the test ends. Both listeners bind 127.0.0.1:0; the HTTP port the
// kernel chose is read from influxd's log line `msg="Listening on HTTP" ... addr=...`.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "influxdb.conf")
	q := func(sub string) string { return fmt.Sprintf("%q", filepath.Join(dir, sub)) }
	text := `reporting-disabled = true
bind-address = "127.0.0.1:0"
[meta]
  dir = ` + q("meta") + `
  logging-enabled = false
[data]
  dir = ` + q("data") + `
  wal-dir = ` + q("wal") + `
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:0"
  auth-enabled = false
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false
  unix-socket-enabled = false
[logging]
  format = "logfmt"
  level = "info"
  suppress-logo = true
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
`
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-config", conf)
	cmd.Dir = dir
	// influxd reads INFLUXDB_* variables as settings; the tests' own must not reach it.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INFLUXDB_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	port := make(chan string, 1)
	var logTail strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if logTail.Len() < 1<<16 {
				logTail.WriteString(line + "\n")
			}
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case port <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	s := &Server{dir: dir}
	select {
	case p := <-port:
		s.URL = "http://127.0.0.1:" + p
	case err := <-exited:
		<-logDone
		t.Fatalf("influxd exited (%v):\n%s", err, logTail.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("influxd did not report its HTTP address within 30s:\n%s", logTail.String())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("influxd at %s did not answer /ping: %v", s.URL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Series is one series of a query result.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// Query runs an InfluxQL query against db (epoch=ns, numbers kept as json.Number) and
// returns the series of its first statement.
func (s *Server) Query(t testing.TB, db, q string) []Series {
	t.Helper()
	res, err := s.query(db, q)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (s *Server) query(db, q string) ([]Series, error) {
	v := url.Values{"q": {q}, "epoch": {"ns"}}
	if db != "" {
		v.Set("db", db)
	}
	resp, err := http.Post(s.URL+"/query", "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	defer resp.Body.Close()
	var out struct {
		Error   string `json:"error"`
		Results []struct {
			Error  string   `json:"error"`
			Series []Series `json:"series"`
		} `json:"results"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("query %q: HTTP %d: %w", q, resp.StatusCode, err)
	}
	if out.Error != "" {
		return nil, fmt.Errorf("query %q: %s", q, out.Error)
	}
	if len(out.Results) == 0 {
		return nil, nil
	}
	if e := out.Results[0].Error; e != "" {
		return nil, fmt.Errorf("query %q: %s", q, e)
	}
	return out.Results[0].Series, nil
}

// Count is `SELECT count(field) FROM measurement` (0 when there is nothing).
func (s *Server) Count(t testing.TB, db, measurement, field string) int64 {
	t.Helper()
	res := s.Query(t, db, fmt.Sprintf(`SELECT count(%q) FROM %q`, field, measurement))
	if len(res) == 0 || len(res[0].Values) == 0 {
		return 0
	}
	n, err := res[0].Values[0][1].(json.Number).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// WaitCount polls Count until it equals want or the timeout passes; it returns the last count.
func (s *Server) WaitCount(t testing.TB, db, measurement, field string, want int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := s.Count(t, db, measurement, field)
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FieldTypes is SHOW FIELD KEYS of a measurement: field name -> float|integer|string|boolean.
func (s *Server) FieldTypes(t testing.TB, db, measurement string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sr := range s.Query(t, db, fmt.Sprintf(`SHOW FIELD KEYS FROM %q`, measurement)) {
		for _, v := range sr.Values {
			out[v[0].(string)] = v[1].(string)
		}
	}
	return out
}

// TagKeys is SHOW TAG KEYS of a measurement.
func (s *Server) TagKeys(t testing.TB, db, measurement string) []string {
	t.Helper()
	var out []string
	for _, sr := range s.Query(t, db, fmt.Sprintf(`SHOW TAG KEYS FROM %q`, measurement)) {
		for _, v := range sr.Values {
			out = append(out, v[0].(string))
		}
	}
	return out
}

// Rows is `SELECT * FROM measurement` as maps of column -> value, in time order.
func (s *Server) Rows(t testing.TB, db, measurement string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, sr := range s.Query(t, db, fmt.Sprintf(`SELECT * FROM %q`, measurement)) {
		for _, v := range sr.Values {
			row := map[string]any{}
			for i, c := range sr.Columns {
				if v[i] != nil {
					row[c] = v[i]
				}
			}
			out = append(out, row)
		}
	}
	return out
}

// Measurements is SHOW MEASUREMENTS.
func (s *Server) Measurements(t testing.TB, db string) []string {
	t.Helper()
	var out []string
	for _, sr := range s.Query(t, db, `SHOW MEASUREMENTS`) {
		for _, v := range sr.Values {
			out = append(out, v[0].(string))
		}
	}
	return out
}

// NullServer is an HTTP endpoint that answers 204 to everything (the benchmark's InfluxDB),
// counting requests.
type NullServer struct {
	*httptest.Server
}

// StartNull starts a NullServer until the test ends.
func StartNull(t testing.TB) *NullServer {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return &NullServer{srv}
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
