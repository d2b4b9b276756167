package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestBenchFlood runs the flood mode on a small load against a spawned
// relay: the last line is the JSON object with the agreed keys, and the
// figures hang together (no timing is asserted).
func TestBenchFlood(t *testing.T) {
	bench := benchBinary(t)
	const attackers, gets, duration = 2, 400, 2.0
	out, err := exec.Command(bench, "flood", "-spawn", "-attackers", "2", "-queues", "3", "-gets", "400", "-duration", "2s").Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || len(lines) < 8 {
		t.Fatalf("last line is not JSON after a table: %q", out)
	}
	num := func(k string) float64 {
		t.Helper()
		v, ok := res[k].(float64)
		if !ok {
			t.Fatalf("%s missing or not a number: %v", k, res[k])
		}
		return v
	}
	for _, k := range []string{"rss_before_bytes", "rss_peak_bytes", "rss_samples", "relay_cpu_s", "round_trips", "p50_ms", "p95_ms", "max_ms", "gets_written"} {
		if num(k) <= 0 {
			t.Errorf("%s = %v", k, res[k])
		}
	}
	if num("attackers") != attackers || num("gets") != gets || num("queues") != 3 || num("duration_s") != duration {
		t.Errorf("parameters not echoed: %v", res)
	}
	if num("rss_peak_bytes") < num("rss_before_bytes") || num("rss_growth_bytes") != num("rss_peak_bytes")-num("rss_before_bytes") {
		t.Errorf("RSS before %v peak %v growth %v", res["rss_before_bytes"], res["rss_peak_bytes"], res["rss_growth_bytes"])
	}
	if !(num("p50_ms") <= num("p95_ms") && num("p95_ms") <= num("max_ms")) {
		t.Errorf("latencies p50 %v p95 %v max %v", res["p50_ms"], res["p95_ms"], res["max_ms"])
	}
	if num("gets_written") > attackers*gets || num("round_trip_failures") < 0 {
		t.Errorf("gets_written %v failures %v", res["gets_written"], res["round_trip_failures"])
	}
	dropped, done := 0, 0
	for _, k := range []string{"attacker_drop_s", "attacker_done_s"} {
		l, ok := res[k].([]any)
		if !ok || len(l) != attackers {
			t.Fatalf("%s = %v", k, res[k])
		}
		for _, v := range l {
			s, ok := v.(float64)
			if !ok || (s != -1 && (s < 0 || s > duration+1)) {
				t.Errorf("%s: %v", k, l)
			}
			if s >= 0 && k == "attacker_drop_s" {
				dropped++
			} else if s >= 0 {
				done++
			}
		}
	}
	if num("attackers_dropped") != float64(dropped) || num("attackers_done") != float64(done) {
		t.Errorf("dropped %v done %v, lists say %d and %d", res["attackers_dropped"], res["attackers_done"], dropped, done)
	}
	if dropped == 0 && num("first_drop_s") != -1 || dropped < attackers && num("last_drop_s") != -1 {
		t.Errorf("first_drop_s %v last_drop_s %v with %d dropped", res["first_drop_s"], res["last_drop_s"], dropped)
	}
	if res["relay_still_serves"] != true {
		t.Error("the relay did not answer PING after the flood")
	}
	for _, args := range [][]string{{"flood", "-spawn", "-attackers", "0"}, {"flood", "-spawn", "-duration", "10ms"}, {"flood"}} {
		if out, err := exec.Command(bench, args...).CombinedOutput(); err == nil {
			t.Fatalf("%v accepted: %s", args, out)
		}
	}
}
