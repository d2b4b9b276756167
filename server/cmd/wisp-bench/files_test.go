package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

func TestBounded(t *testing.T) {
	var running, peak, done atomic.Int64
	err := bounded(50, 3, func(int) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		running.Add(-1)
		done.Add(1)
		return nil
	})
	if err != nil || done.Load() != 50 || peak.Load() > 3 {
		t.Fatalf("err %v done %d peak %d", err, done.Load(), peak.Load())
	}
	boom := errors.New("boom")
	if err := bounded(50, 3, func(i int) error {
		if i == 7 {
			return boom
		}
		return nil
	}); !errors.Is(err, boom) {
		t.Fatalf("error not returned: %v", err)
	}
}

// TestBenchFiles runs the files mode on a small load against a spawned
// relay; the last line is the JSON object with the agreed keys.
func TestBenchFiles(t *testing.T) {
	bench := benchBinary(t)
	out, err := exec.Command(bench, "files", "-spawn", "-size", "300000", "-chunk", "65536", "-inflight", "2").Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res map[string]float64
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || len(lines) < 5 {
		t.Fatalf("last line is not JSON after a table: %q", out)
	}
	for _, k := range []string{"upload_mb_per_s", "download_mb_per_s", "baseline_mb_per_s", "ratio"} {
		if res[k] <= 0 {
			t.Errorf("%s = %v", k, res[k])
		}
	}
	if res["chunks"] != 5 || res["size"] != 5*65536 {
		t.Errorf("chunks %v size %v", res["chunks"], res["size"])
	}
	for _, args := range [][]string{{"files", "-spawn", "-chunk", "1000"}, {"files", "-spawn", "-inflight", "0"}} {
		if out, err := exec.Command(bench, args...).CombinedOutput(); err == nil {
			t.Fatalf("%v accepted: %s", args, out)
		}
	}
}
