//go:build !js

package agent

import (
	"errors"
	"fmt"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
)

// crashFS wraps a file system and fails every mutation after a budget is
// spent, as if the process died at that instant: what was written before
// stays, nothing after it lands.
type crashFS struct {
	*mem.FS
	mu     sync.Mutex
	budget int // mutations left; <0 means unlimited
}

var errCrashed = errors.New("crashed")

func (f *crashFS) spend() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.budget == 0 {
		return errCrashed
	}
	if f.budget > 0 {
		f.budget--
	}
	return nil
}

func (f *crashFS) OpenFile(name string, flag int, perm hackpadfs.FileMode) (hackpadfs.File, error) {
	if flag&(hackpadfs.FlagWriteOnly|hackpadfs.FlagReadWrite|hackpadfs.FlagCreate|hackpadfs.FlagTruncate) != 0 {
		if err := f.spend(); err != nil {
			return nil, err
		}
	}
	return f.FS.OpenFile(name, flag, perm)
}

func (f *crashFS) Rename(a, b string) error {
	if err := f.spend(); err != nil {
		return err
	}
	return f.FS.Rename(a, b)
}

func (f *crashFS) Remove(name string) error {
	if err := f.spend(); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

func (f *crashFS) Mkdir(name string, perm hackpadfs.FileMode) error {
	if err := f.spend(); err != nil {
		return err
	}
	return f.FS.Mkdir(name, perm)
}

func (f *crashFS) MkdirAll(name string, perm hackpadfs.FileMode) error {
	if err := f.spend(); err != nil {
		return err
	}
	return f.FS.MkdirAll(name, perm)
}

// TestRestartSafety drops the agents at random points (a storage write
// that never lands, then no goodbye) while both sides send, restarts them
// from the same storage, and checks that every message Send accepted is
// received exactly once, and that a message whose Send did not return
// success (the crash hit it) is received at most once and then was listed
// by Pending after the restart, so the chat layer shows it.
func TestRestartSafety(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	for _, p := range []*peer{a, b} {
		p.stop()
		base, err := mem.NewFS()
		if err != nil {
			t.Fatal(err)
		}
		p.fs = &crashFS{FS: base, budget: -1}
		p.start()
	}
	ca, cb := connect(t, a, b, ra, rb)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	accepted := map[*peer]map[string]bool{a: {}, b: {}}
	recovered := map[*peer]map[string]bool{a: {}, b: {}}
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	for round := range rounds {
		victim := []*peer{a, b}[rng.IntN(2)]
		cfs := victim.fs.(*crashFS)
		cfs.mu.Lock()
		cfs.budget = 5 + rng.IntN(60)
		cfs.mu.Unlock()
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
		cfs.mu.Lock()
		cfs.budget = -1
		cfs.mu.Unlock()
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
	b.ev.wait(t, "b receives everything a sent", 120*time.Second, func() bool { return len(b.ev.received[cb]) >= want(a) })
	a.ev.wait(t, "a receives everything b sent", 120*time.Second, func() bool { return len(a.ev.received[ca]) >= want(b) })
	time.Sleep(200 * time.Millisecond) // anything extra would arrive now
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
