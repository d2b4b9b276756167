package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/internal/pgtest"
)

func TestPercentile(t *testing.T) {
	var l []time.Duration
	for i := 100; i >= 1; i-- {
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(l, 0.5); p != 51 {
		t.Fatalf("p50 = %v", p)
	}
	if p := percentile(l, 0.99); p != 100 {
		t.Fatalf("p99 = %v", p)
	}
	if percentile(nil, 0.5) != 0 {
		t.Fatal("empty")
	}
}

// TestBenchRuns builds wisp-relay and wisp-bench and runs both modes on a
// tiny load; the last line must be the JSON object with the agreed keys.
func TestBenchRuns(t *testing.T) {
	bench := benchBinary(t)
	run := func(args ...string) map[string]float64 {
		out, err := exec.Command(bench, args...).Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var res map[string]float64
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
			t.Fatalf("last line is not JSON: %q", lines[len(lines)-1])
		}
		if len(lines) < 3 {
			t.Fatalf("no table before the JSON: %q", out)
		}
		return res
	}
	res := run("relay", "-spawn", "-conns", "2", "-queues", "4", "-msgs", "3", "-size", "100")
	for _, k := range []string{"msgs_per_s", "p50_ms", "p99_ms", "rss_bytes", "baseline_msgs_per_s", "ratio"} {
		if res[k] <= 0 {
			t.Errorf("relay: %s = %v", k, res[k])
		}
	}
	res = run("idle", "-spawn", "-conns", "20")
	for _, k := range []string{"relay_bytes_per_conn", "bare_bytes_per_conn", "rss_bytes", "ratio"} {
		if _, ok := res[k]; !ok {
			t.Errorf("idle: no %s", k)
		}
	}
	if out, err := exec.Command(bench, "relay", "-addr", "wisp://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@relay.example:443").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "loopback") {
		t.Fatalf("non-loopback relay accepted: %s", out)
	}
	if err := exec.Command(bench, "relay").Run(); err == nil {
		t.Fatal("neither -addr nor -spawn accepted")
	}
}

// TestBenchRelayProxy runs relay -proxy on a tiny load: every SKEY and
// SEND goes through the spawned proxy, which opens one route.
func TestBenchRelayProxy(t *testing.T) {
	bench := benchBinary(t)
	out, err := exec.Command(bench, "relay", "-spawn", "-proxy", "-lockstep", "-conns", "2", "-queues", "4", "-msgs", "3", "-size", "100").Output()
	if err != nil {
		t.Fatalf("relay -proxy: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res map[string]float64
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not JSON: %q", lines[len(lines)-1])
	}
	if len(lines) < 6 || !strings.Contains(string(out), "route reuse=") {
		t.Fatalf("no table and proxy line before the JSON: %q", out)
	}
	for _, k := range []string{"msgs_per_s", "p50_ms", "p95_ms", "p99_ms", "rss_bytes", "proxy_rss_bytes", "baseline_msgs_per_s", "ratio"} {
		if res[k] <= 0 {
			t.Errorf("relay -proxy: %s = %v", k, res[k])
		}
	}
	// 4 SKEYs and 12 SENDs forwarded, on one route, all run by the
	// destination as forwarded commands.
	if res["proxy_forwarded"] != 16 || res["dest_forwarded_in"] != 16 || res["proxy_routes_opened"] != 1 {
		t.Errorf("forwarded %v, forwarded in %v, routes %v; want 16, 16, 1", res["proxy_forwarded"], res["dest_forwarded_in"], res["proxy_routes_opened"])
	}
	if r := res["route_reuse"]; r != 1-1.0/16 {
		t.Errorf("route_reuse = %v", r)
	}
}

// TestBenchRelayCluster runs relay -cluster on a small load: bbolt with
// one relay process, PostgreSQL (a throwaway server) with one and with
// two processes, then the echo baseline; every run delivers every
// message. It skips, loudly, without PostgreSQL.
func TestBenchRelayCluster(t *testing.T) {
	bench := benchBinary(t)
	for _, bad := range [][]string{
		{"relay", "-cluster", "-conns", "3"},
		{"relay", "-spawn", "-store", "postgres://wisp@127.0.0.1/x"},
		{"relay", "-cluster", "-store", "postgres://wisp@db.example:5432/x"},
		{"relay", "-cluster", "-addr", "wisp://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@127.0.0.1:1"},
	} {
		if out, err := exec.Command(bench, bad...).CombinedOutput(); err == nil {
			t.Errorf("%v accepted: %s", bad, out)
		}
	}
	cmd := exec.Command(bench, "relay", "-spawn", "-cluster", "-conns", "4", "-queues", "8", "-msgs", "3", "-size", "100")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && strings.Contains(stderr.String(), pgtest.ErrUnavailable.Error()) {
		fmt.Fprintf(os.Stderr, "\n*** %s SKIPPED: %v ***\n\n", t.Name(), pgtest.ErrUnavailable)
		t.Skipf("SKIPPED, no PostgreSQL: %v", pgtest.ErrUnavailable)
	}
	if err != nil {
		t.Fatalf("relay -cluster: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		MsgsPerS         float64 `json:"msgs_per_s"`
		BaselineMsgsPerS float64 `json:"baseline_msgs_per_s"`
		Postgres         string  `json:"postgres"`
		Runs             []struct {
			Name      string   `json:"name"`
			Store     string   `json:"store"`
			Processes int      `json:"processes"`
			MsgsPerS  float64  `json:"msgs_per_s"`
			P50ms     float64  `json:"p50_ms"`
			P99ms     float64  `json:"p99_ms"`
			RelayCPUs float64  `json:"relay_cpu_s"`
			DBCPUs    *float64 `json:"db_cpu_s"`
			RSSBytes  int64    `json:"rss_bytes"`
			Ratio     float64  `json:"ratio"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not JSON: %q: %v", lines[len(lines)-1], err)
	}
	if len(lines) < 7 {
		t.Fatalf("no table before the JSON: %q", out)
	}
	if len(res.Runs) != 3 {
		t.Fatalf("%d runs, want 3: %s", len(res.Runs), lines[len(lines)-1])
	}
	want := []struct {
		name, store string
		procs       int
	}{{"bbolt-1", "bbolt", 1}, {"postgres-1", "postgres", 1}, {"postgres-2", "postgres", 2}}
	for i, r := range res.Runs {
		if r.Name != want[i].name || r.Store != want[i].store || r.Processes != want[i].procs {
			t.Errorf("run %d is %s/%s/%d, want %v", i, r.Name, r.Store, r.Processes, want[i])
		}
		if r.MsgsPerS <= 0 || r.P50ms <= 0 || r.P99ms < r.P50ms || r.RSSBytes <= 0 || r.Ratio <= 0 || r.RelayCPUs < 0 {
			t.Errorf("run %s: %+v", r.Name, r)
		}
		if (r.DBCPUs != nil) != (r.Store == "postgres") || r.DBCPUs != nil && *r.DBCPUs < 0 {
			t.Errorf("run %s: db_cpu_s %v", r.Name, r.DBCPUs)
		}
	}
	if res.MsgsPerS != res.Runs[0].MsgsPerS || res.BaselineMsgsPerS <= 0 || res.Postgres != "pgtest" {
		t.Errorf("top level: msgs_per_s %v (bbolt run %v), baseline %v, postgres %q", res.MsgsPerS, res.Runs[0].MsgsPerS, res.BaselineMsgsPerS, res.Postgres)
	}
}

// binDir holds wisp-bench and wisp-relay, built once for all the tests
// that run them (benchBinary).
var binDir struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir.dir != "" {
		_ = os.RemoveAll(binDir.dir)
	}
	os.Exit(code)
}

// benchBinary builds wisp-bench and, beside it, the wisp-relay its
// -spawn starts (once per test run), and returns wisp-bench's path. It
// skips the test with -short.
func benchBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs both binaries")
	}
	binDir.once.Do(func() {
		if binDir.dir, binDir.err = os.MkdirTemp("", "wisp-bench-test-"); binDir.err != nil {
			return
		}
		for name, pkg := range map[string]string{"wisp-relay": "../wisp-relay", "wisp-bench": "."} {
			if out, err := exec.Command("go", "build", "-o", filepath.Join(binDir.dir, name), pkg).CombinedOutput(); err != nil {
				binDir.err = fmt.Errorf("build %s: %w\n%s", pkg, err, out)
				return
			}
		}
	})
	if binDir.err != nil {
		t.Fatal(binDir.err)
	}
	return filepath.Join(binDir.dir, "wisp-bench")
}

// TestBenchDrain runs drain on a tiny load end to end: every stored
// message is delivered once on fresh connections, and it passes.
func TestBenchDrain(t *testing.T) {
	bench := benchBinary(t)
	cmd := exec.Command(bench, "drain", "-spawn", "-conns", "4", "-senders", "2", "-queues", "200", "-msgs", "2", "-size", "100", "-timeout", "60s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("drain: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-2], "drain PASS: 400 messages on 200 queues over 4 connections") {
		t.Fatalf("no PASS summary before the JSON: %s", out)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not JSON: %q", lines[len(lines)-1])
	}
	for k, want := range map[string]any{"pass": true, "acknowledged": 400.0, "received": 400.0, "distinct": 400.0,
		"duplicates": 0.0, "redelivered": 0.0, "missing": 0.0, "disconnects": 0.0, "sub_errors": 0.0, "send_errors": 0.0} {
		if res[k] != want {
			t.Errorf("%s = %v, want %v", k, res[k], want)
		}
	}
	for _, k := range []string{"setup_s", "sub_s", "drain_s", "acked_s", "msgs_per_s", "rss_bytes"} {
		if v, _ := res[k].(float64); v <= 0 {
			t.Errorf("%s = %v", k, res[k])
		}
	}
}
