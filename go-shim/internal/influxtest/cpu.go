package influxtest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ThreadCPU is the CPU time (ns, from /proc/self/task/*/schedstat) of this process's threads,
// split into the engine's writer thread(s) ("perfsink-writer" and the runtime threads it
// names) and all others (Go's threads: the output's goroutines, the cgo calls and the engine
// work they do — encoding points — and the Go runtime). Threads that exited are not counted.
type ThreadCPU struct {
	Go, Writer int64
}

// ReadThreadCPU reads the CPU time of every live thread.
func ReadThreadCPU() (ThreadCPU, error) {
	var out ThreadCPU
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return out, err
	}
	exe := filepath.Base(self)
	if len(exe) > 15 {
		exe = exe[:15] // comm is truncated to 15 bytes
	}
	dirs, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return out, err
	}
	for _, d := range dirs {
		base := "/proc/self/task/" + d.Name() + "/"
		sched, err1 := os.ReadFile(base + "schedstat")
		comm, err2 := os.ReadFile(base + "comm")
		if err1 != nil || err2 != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(sched))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if strings.TrimSpace(string(comm)) == exe {
			out.Go += ns
		} else {
			out.Writer += ns
		}
	}
	return out, nil
}

// Sub is t - u.
func (t ThreadCPU) Sub(u ThreadCPU) ThreadCPU {
	return ThreadCPU{Go: t.Go - u.Go, Writer: t.Writer - u.Writer}
}

const nullEnv = "GOSHIM_NULL_SERVER"

// ServeNullIfAsked turns the test binary into a null HTTP server when it was started by
// StartNullProcess; call it first in TestMain.
func ServeNullIfAsked() {
	if os.Getenv(nullEnv) != "1" {
		return
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})}
	ln, err := listenLoopback()
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("http://" + ln.Addr().String())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); os.Exit(0) }() // parent gone: exit
	_ = srv.Serve(ln)
	os.Exit(0)
}

// StartNullProcess runs a null HTTP server (204 to everything) in a child process, so that
// its CPU time is not counted as the benchmarked process's, and returns its URL.
func StartNullProcess(t testing.TB) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nullEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		t.Fatalf("null server did not start: %q %v", line, err)
	}
	return strings.TrimSpace(line)
}
