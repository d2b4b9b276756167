package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

func TestDeriveQueue(t *testing.T) {
	a, b := deriveQueue(1, 7), deriveQueue(1, 7)
	if a.rcv != b.rcv || a.snd != b.snd || !a.auth.Equal(b.auth) || a.boxKey != b.boxKey || a.msgID != b.msgID {
		t.Fatal("queue 7 differs between two derivations")
	}
	if c := deriveQueue(1, 8); c.rcv == a.rcv || c.snd == a.snd || c.auth.Equal(a.auth) {
		t.Fatal("queues 7 and 8 share IDs or keys")
	}
	if c := deriveQueue(2, 7); c.rcv == a.rcv {
		t.Fatal("seeds 1 and 2 give queue 7 the same ID")
	}
	if body := genBody(1, 7, 100); len(body) != 100 || !bytes.Equal(body, genBody(1, 7, 100)) || bytes.Equal(body, genBody(1, 8, 100)) {
		t.Fatal("bodies are not deterministic per queue")
	}
}

func TestFloatList(t *testing.T) {
	var l floatList
	if err := l.Set("0.5, 0.25"); err != nil || len(l) != 2 || l[0] != 0.5 || l[1] != 0.25 {
		t.Fatalf("Set: %v %v", l, err)
	}
	for _, bad := range []string{"0", "-1", "x", "NaN", "+Inf"} {
		if err := new(floatList).Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// lastJSON runs wisp-bench and decodes the JSON on its last line.
func lastJSON(t *testing.T, bench string, v any, args ...string) string {
	t.Helper()
	cmd := exec.Command(bench, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s\n%s", args, err, out, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("%v: last line is not JSON: %q", args, lines[len(lines)-1])
	}
	return string(out)
}

// TestBenchStart generates a small store, which the relay must accept
// (start verifies it with a client) and starts the relay on it.
func TestBenchStart(t *testing.T) {
	bench := benchBinary(t)
	var res startResult
	out := lastJSON(t, bench, &res, "start", "-queues", "300", "-msg-every", "7", "-size", "100", "-starts", "1", "-workers", "64")
	if !res.Verified || res.Queues != 300 || res.Msgs != 43 || res.FillS <= 0 || res.StoreBytes <= res.EmptyBytes || res.EmptyBytes <= 0 {
		t.Fatalf("start: %+v\n%s", res, out)
	}
	if len(res.Rows) < 3 || res.AddressMs <= 0 || res.ConnectedMs < res.AddressMs || res.EmptyAddressMs <= 0 || res.NoCheckAddressMs <= 0 {
		t.Fatalf("start timings: %+v\n%s", res, out)
	}
	for _, r := range res.Rows {
		if len(r.AddressMs) != 1 || len(r.ConnectedMs) != 1 || len(r.StopMs) != 1 {
			t.Errorf("row %s: %+v", r.Name, r)
		}
	}
}

// TestBenchPacedAndConnect runs relay with open-loop runs at fractions
// of the peak, and idle's connect phase, on tiny loads.
func TestBenchPacedAndConnect(t *testing.T) {
	bench := benchBinary(t)
	var res relayResult
	out := lastJSON(t, bench, &res, "relay", "-spawn", "-conns", "2", "-queues", "10", "-msgs", "5", "-size", "100", "-rate-fraction", "0.5", "-rate", "200")
	if len(res.Paced) != 2 || !strings.Contains(out, "50% of peak") {
		t.Fatalf("paced runs: %+v\n%s", res.Paced, out)
	}
	for i, p := range res.Paced {
		if p.Rate <= 0 || p.MsgsPerS <= 0 || p.P50ms <= 0 || p.P99ms < p.P50ms || p.Maxms < p.P99ms || p.Msgs != 50 {
			t.Errorf("paced run %d: %+v", i, p)
		}
	}
	if p := res.Paced[0]; p.Fraction != 0.5 || p.Rate != res.MsgsPerS/2 {
		t.Errorf("50%% of peak: rate %v, peak %v", p.Rate, res.MsgsPerS)
	}
	if p := res.Paced[1]; p.Fraction != 0 || p.Rate != 200 {
		t.Errorf("-rate 200: %+v", p)
	}
	if err := exec.Command(bench, "relay", "-spawn", "-lockstep", "-rate", "10").Run(); err == nil {
		t.Error("-rate with -lockstep accepted")
	}
	var idle idleResult
	out = lastJSON(t, bench, &idle, "idle", "-spawn", "-conns", "20", "-workers", "8")
	if idle.Workers != 8 || idle.ConnectS <= 0 || idle.BareConnectS <= 0 || idle.DialP50ms <= 0 || idle.NewP50ms <= 0 || idle.SubP50ms <= 0 || idle.ConnectRatio <= 0 {
		t.Fatalf("idle connect phase: %+v\n%s", idle, out)
	}
}
