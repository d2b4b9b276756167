package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
