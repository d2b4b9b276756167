//go:build !js

package agent

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/wasm/internal/crashfs"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// TestRestartSafety drops the agents at random points (a storage write
// that never lands, then no goodbye) while both sides send, restarts them
// from the same storage, and checks that every message Send accepted is
// received exactly once, and that a message whose Send did not return
// success (the crash hit it) is received at most once and then was listed
// by Pending after the restart, so the chat layer shows it.
func TestRestartSafety(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	onCrashFS(t, a, b)
	a.useBatches()
	b.useBatches()
	ca, cb := connect(t, a, b, ra, rb)
	rng := rand.New(rand.NewPCG(testSeed(t), 2))
	accepted := map[*peer]map[string]bool{a: {}, b: {}}
	recovered := map[*peer]map[string]bool{a: {}, b: {}}
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	for round := range rounds {
		victim := []*peer{a, b}[rng.IntN(2)]
		cfs := victim.fs.(*crashfs.FS)
		cfs.SetBudget(5 + rng.IntN(60))
		for i := range 15 {
			for _, p := range []*peer{a, b} {
				c := ca
				if p == b {
					c = cb
				}
				text := fmt.Sprintf("%p r%d m%d", p, round, i)
				if _, err := p.agent.Send(ctxT(t), c, []byte(text)); err == nil {
					accepted[p][text] = true
				}
			}
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
		// The crash: drop the victim, then restart it on what was written.
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		victim.stop()
		cfs.SetBudget(-1)
		victim.start()
		c := ca
		if victim == b {
			c = cb
		}
		pending, err := victim.agent.Pending(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range pending {
			recovered[victim][string(m.Body)] = true
		}
	}
	want := func(from *peer) int { return len(accepted[from]) }
	// Wait for the exact set Send accepted (extra recovered messages may
	// arrive too, so a count could end the wait early).
	has := func(got map[uint64]Received, texts map[string]bool) bool {
		seen := map[string]bool{}
		for _, m := range got {
			seen[string(m.Body)] = true
		}
		for text := range texts {
			if !seen[text] {
				return false
			}
		}
		return true
	}
	b.ev.wait(t, "b receives everything a sent", 120*time.Second, func() bool { return has(b.ev.received[cb], accepted[a]) })
	a.ev.wait(t, "a receives everything b sent", 120*time.Second, func() bool { return has(a.ev.received[ca], accepted[b]) })
	time.Sleep(scaled(200 * time.Millisecond)) // anything extra would arrive now
	for _, tc := range []struct {
		to   *peer
		c    ConnID
		from *peer
	}{{b, cb, a}, {a, ca, b}} {
		tc.to.ev.mu.Lock()
		got := map[string]int{}
		for _, m := range tc.to.ev.received[tc.c] {
			got[string(m.Body)]++
		}
		tc.to.ev.mu.Unlock()
		for text := range accepted[tc.from] {
			if got[text] != 1 {
				t.Errorf("%q received %d times", text, got[text])
			}
		}
		for text, n := range got {
			if n != 1 {
				t.Errorf("%q received %d times", text, n)
			}
			if !accepted[tc.from][text] && !recovered[tc.from][text] {
				t.Errorf("%q received, but Send failed and Pending never listed it", text)
			}
		}
	}
	t.Logf("a sent %d, b sent %d across %d crashes", want(a), want(b), rounds)
}

// onCrashFS restarts the peers on the random-crash file system.
func onCrashFS(t *testing.T, peers ...*peer) {
	t.Helper()
	for _, p := range peers {
		p.stop()
		cfs, err := crashfs.New()
		if err != nil {
			t.Fatal(err)
		}
		p.fs = cfs
		p.start()
	}
}

// testSeed is a random seed, logged; WISP_TEST_SEED repeats a run.
func testSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("WISP_TEST_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (WISP_TEST_SEED repeats a run)", seed)
	return seed
}
