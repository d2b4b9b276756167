//go:build !js

package chat

import (
	"path"
	"sync"
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// countingFS counts the files and directories opened, by the last segment
// of their path (a connection's "state", its outbox "out", a chat's
// "contact"): in the browser each is an IndexedDB transaction, where the
// transaction, not the bytes, is the cost.
type countingFS struct {
	*mem.FS
	mu     sync.Mutex
	counts map[string]int
}

func (c *countingFS) count(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[path.Base(name)]++
}

func (c *countingFS) Open(name string) (hackpadfs.File, error) {
	c.count(name)
	return c.FS.Open(name)
}

func (c *countingFS) OpenFile(name string, flag int, perm hackpadfs.FileMode) (hackpadfs.File, error) {
	c.count(name)
	return c.FS.OpenFile(name, flag, perm)
}

// take returns the counts so far and starts again.
func (c *countingFS) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[string]int{}
	return out
}

// TestUnlockReadsOnce checks that unlocking a profile reads each
// connection's record and outbox listing once (the agent's Preload and
// store.Cache), where it used to read them in Start, in reconcile, in
// each outbox worker's first pass and in moveOff: three record reads and
// two listings per contact. Listing the chats then reads each chat's
// record once, and a second listing none.
func TestUnlockReadsOnce(t *testing.T) {
	relay := relaytest.Start(t)
	m, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	fsys := &countingFS{FS: m, counts: map[string]int{}}
	a := newUserOn(t, "Archive", "", relay, fsys)
	b := newUser(t, "Peer", "", relay)
	const n = 12
	for range n {
		connect(t, a, b, false)
	}
	a.m.Close()
	a.m = NewManager(fsys, a.config(relay))
	fsys.take()
	a.unlock()
	if _, err := a.p.Contacts(); err != nil {
		t.Fatal(err)
	}
	// What the unlock's background work (moveOff, the outbox workers)
	// reads again, done here so that it is counted whenever they run.
	for _, id := range a.p.ag.Connections() {
		if _, err := a.p.ag.Connection(id); err != nil {
			t.Fatal(err)
		}
		if _, err := a.p.ag.Pending(id); err != nil {
			t.Fatal(err)
		}
	}
	got := fsys.take()
	if got["state"] > n+1 || got["out"] > n || got["contact"] > n {
		t.Errorf("unlocking %d contacts read %d connection records (plus the address's), listed %d outboxes and read %d chat records; want each at most once",
			n, got["state"], got["out"], got["contact"])
	}
	if _, err := a.p.Contacts(); err != nil {
		t.Fatal(err)
	}
	if got := fsys.take(); got["contact"] != 0 {
		t.Errorf("listing the chats again read %d chat records, want none (cached)", got["contact"])
	}
}
