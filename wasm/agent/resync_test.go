//go:build !js

package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/crypto/ratchet"
	"github.com/wisp-chat/wisp/wasm/internal/crashfs"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// backup copies a stopped peer's storage, as a backup file holds it.
func backup(t *testing.T, p *peer) hackpadfs.FS {
	t.Helper()
	p.stop()
	defer p.start()
	dst, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	copyFS(t, dst, p.fs)
	return dst
}

func copyFS(t *testing.T, dst, src hackpadfs.FS) {
	t.Helper()
	err := hackpadfs.WalkDir(src, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || name == "." {
			return err
		}
		if d.IsDir() {
			return hackpadfs.MkdirAll(dst, name, 0o700)
		}
		b, err := hackpadfs.ReadFile(src, name)
		if err != nil {
			return err
		}
		return hackpadfs.WriteFullFile(dst, name, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// restore starts p again on an old copy of its storage, with a fresh
// recorder (the chat layer's records come from the same backup).
func restore(t *testing.T, p *peer, old hackpadfs.FS, mark bool) {
	t.Helper()
	p.stop()
	p.fs, p.ev, p.restored = old, newRecorder(), mark
	p.start()
	p.restored = false
}

// drained waits until p's outbox on id is empty.
func drained(t *testing.T, p *peer, id ConnID) {
	t.Helper()
	pollUntil(t, "an empty outbox", 30*time.Second, func() bool {
		entries, err := p.agent.loadOutbox(id)
		return err == nil && len(entries) == 0
	})
}

// talk sends n messages each way, named by prefix, and waits until
// each side has them all; it returns the bodies.
func talk(t *testing.T, a, b *peer, ca, cb ConnID, prefix string, n int) (fromA, fromB []string) {
	t.Helper()
	for i := range n {
		fromA = append(fromA, fmt.Sprintf("%s a→b %d", prefix, i))
		fromB = append(fromB, fmt.Sprintf("%s b→a %d", prefix, i))
		if _, err := a.agent.Send(ctxT(t), ca, []byte(fromA[i])); err != nil {
			t.Fatal(err)
		}
		if _, err := b.agent.Send(ctxT(t), cb, []byte(fromB[i])); err != nil {
			t.Fatal(err)
		}
	}
	b.ev.wait(t, prefix+": b receives all", 30*time.Second, func() bool { return b.ev.hasBodies(cb, fromA...) })
	a.ev.wait(t, prefix+": a receives all", 30*time.Second, func() bool { return a.ev.hasBodies(ca, fromB...) })
	return fromA, fromB
}

// openFailures counts the messages a peer could not decrypt: a message
// key used twice is reported by the receiving ratchet as a repeat
// (ErrDuplicate), and one sealed with a state the receiver moved past does
// not open at all.
func openFailures(r *recorder) (repeats, other int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.problems {
		switch {
		case errors.Is(err, ratchet.ErrDuplicate):
			repeats++
		case errors.Is(err, ErrUndecryptable):
			other++
		}
	}
	return repeats, other
}

// TestResyncAfterRestore: a backup, 50 messages, the old backup imported,
// and the conversation goes on. The restored side never seals with its
// old ratchet (the peer sees no repeated or undecryptable message), the
// messages it queues before the re-sync go out after it, every message
// after it is delivered both ways, and no message ID names two messages.
func TestResyncAfterRestore(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	ca, cb := connect(t, a, b, ra, rb)
	talk(t, a, b, ca, cb, "before", 3)
	codeBefore := b.record(t, cb).Ratchet

	old := backup(t, a)
	talk(t, a, b, ca, cb, "after the backup", 25)
	b.ev.mu.Lock()
	bHad := map[uint64]string{}
	for id, m := range b.ev.received[cb] {
		bHad[id] = string(m.Body)
	}
	b.ev.mu.Unlock()

	// A message resent after a restart (the backup's) may arrive twice
	// and be dropped as a repeat: only what follows the restore counts.
	bRep, bRej := openFailures(b.ev)
	// A SEND still in flight when a stops could reach b's queue after the
	// restored a's request (two sessions are not ordered), sealed by the
	// old device: let a's outbox drain first.
	drained(t, a, ca)
	restore(t, a, old, true)
	if c := a.record(t, ca); c.Resync == nil || c.Resync.Base <= ResyncGap {
		t.Fatalf("the restored connection is not marked for a re-sync: %+v", c.Resync)
	}
	// Queued before the answer: they wait, unsealed, and go out after it.
	var early []string
	var earlyIDs []uint64
	for i := range 5 {
		early = append(early, fmt.Sprintf("queued during the re-sync %d", i))
		id, err := a.agent.Send(ctxT(t), ca, []byte(early[i]))
		if err != nil {
			t.Fatal(err)
		}
		earlyIDs = append(earlyIDs, id)
	}
	a.ev.wait(t, "a re-synced", 30*time.Second, func() bool { _, ok := a.ev.resynced(ca); return ok })
	b.ev.wait(t, "b re-synced", 30*time.Second, func() bool { _, ok := b.ev.resynced(cb); return ok })
	b.ev.wait(t, "b receives what a queued meanwhile", 30*time.Second, func() bool { return b.ev.hasBodies(cb, early...) })
	a.ev.wait(t, "a's queued messages delivered", 30*time.Second, func() bool { return hasIDs(a.ev.delivered[ca], earlyIDs) })
	// What b sent before the re-sync under ratchet states the backup does
	// not have (receipts in flight at the restore) may not decrypt at a;
	// nothing after it may.
	_, aBefore := openFailures(a.ev)
	fromA, _ := talk(t, a, b, ca, cb, "after the re-sync", 25)

	if rep, rej := openFailures(b.ev); rep != bRep || rej != bRej {
		t.Errorf("b could not decrypt %d repeated and %d other messages from the restored side", rep-bRep, rej-bRej)
	}
	if rep, rej := openFailures(a.ev); rep != 0 || rej != aBefore {
		t.Errorf("a could not decrypt %d repeated and %d other messages after the re-sync", rep, rej-aBefore)
	}
	ia, _ := a.agent.Connection(ca)
	ib, _ := b.agent.Connection(cb)
	if string(ia.SecurityCode) != string(ib.SecurityCode) || slices.Equal(codeBefore, b.record(t, cb).Ratchet) {
		t.Errorf("after the re-sync the security codes differ or the ratchet did not change")
	}
	if ia.Resync != 0 || ib.Resync != 0 {
		t.Errorf("re-sync still shown: a %v, b %v", ia.Resync, ib.Resync)
	}
	b.ev.mu.Lock()
	defer b.ev.mu.Unlock()
	if b.ev.dupes != 0 {
		t.Errorf("b was given %d message IDs twice", b.ev.dupes)
	}
	for id, m := range b.ev.received[cb] {
		if was, ok := bHad[id]; ok && was != string(m.Body) {
			t.Errorf("ID %d names two messages at b: %q and %q", id, was, m.Body)
		}
	}
	for _, body := range append(early, fromA...) {
		if !b.ev.hasBodies(cb, body) {
			t.Errorf("b did not receive %q", body)
		}
	}
}

// TestFixConnection: a side restored without a re-sync (as an older
// version would) seals with its old ratchet; the peer cannot decrypt
// those messages, suggests a fix after a few, and Resync repairs the
// connection: afterwards every message is delivered both ways.
func TestFixConnection(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	ca, cb := connect(t, a, b, ra, rb)
	talk(t, a, b, ca, cb, "before", 3)
	old := backup(t, a)
	talk(t, a, b, ca, cb, "after the backup", 10)

	restore(t, a, old, false) // the old behaviour: no re-sync
	for i := range 4 {
		if _, err := a.agent.Send(ctxT(t), ca, []byte(fmt.Sprintf("sealed with the old ratchet %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	b.ev.wait(t, "b suggests fixing the connection", 30*time.Second, func() bool {
		return slices.ContainsFunc(b.ev.resyncs[cb], func(ev ResyncEvent) bool { return ev.Status == ResyncSuggested })
	})
	if rep, rej := openFailures(b.ev); rep+rej < badOpensFix {
		t.Fatalf("b reported %d+%d undecryptable messages, want at least %d", rep, rej, badOpensFix)
	}
	if info, _ := b.agent.Connection(cb); info.Undecryptable < badOpensFix {
		t.Errorf("Info.Undecryptable = %d", info.Undecryptable)
	}
	if err := b.agent.Resync(ctxT(t), cb); err != nil {
		t.Fatal(err)
	}
	b.ev.wait(t, "b re-synced", 30*time.Second, func() bool { _, ok := b.ev.resynced(cb); return ok })
	a.ev.wait(t, "a re-synced", 30*time.Second, func() bool { _, ok := a.ev.resynced(ca); return ok })
	fromA, fromB := talk(t, a, b, ca, cb, "after the fix", 10)

	// The stale side's numbering jumped past the IDs b has seen. (Before
	// the fix, b's receipts for the IDs it got before the restore may
	// mark the stale messages with the same IDs delivered: that is the
	// old behaviour this test starts from.)
	if c := a.record(t, ca); c.SentID < ResyncGap {
		t.Errorf("the stale side still numbers from %d", c.SentID)
	}
	b.ev.mu.Lock()
	defer b.ev.mu.Unlock()
	if b.ev.dupes != 0 {
		t.Errorf("b was given %d message IDs twice", b.ev.dupes)
	}
	for _, body := range fromA {
		if !b.ev.hasBodies(cb, body) {
			t.Errorf("b did not receive %q", body)
		}
	}
	_ = fromB // exchange waited for a to receive them all
}

// TestResyncRestartSafety: the re-sync after a restore, with either side
// crashing at a random write while it runs and messages flow both ways.
// Every message Send accepted arrives exactly once, nothing arrives that
// Send did not accept (or Pending did not list after a crash). A message
// key used twice for two messages would lose one of them, which this
// catches. (Undecryptable messages are not counted here: a message sent
// again after a crash is a byte copy of one the peer processed, and a copy
// from an older receiving chain fails as undecryptable, not as a repeat.
// TestResyncAfterRestore counts them without crashes.)
func TestResyncRestartSafety(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	onCrashFS(t, b)
	ca, cb := connect(t, a, b, ra, rb)
	talk(t, a, b, ca, cb, "before", 3)
	old := backup(t, a)
	talk(t, a, b, ca, cb, "after the backup", 10)
	drained(t, a, ca)
	cfs, err := crashfs.New()
	if err != nil {
		t.Fatal(err)
	}
	copyFS(t, cfs, old)
	restore(t, a, cfs, true)

	rng := rand.New(rand.NewPCG(testSeed(t), 3))
	accepted := map[*peer]map[string]bool{a: {}, b: {}}
	recovered := map[*peer]map[string]bool{a: {}, b: {}}
	conn := map[*peer]ConnID{a: ca, b: cb}
	sentAs := map[string]uint64{} // b's messages by text
	for round := range 8 {
		victim := []*peer{a, b}[rng.IntN(2)]
		victim.fs.(*crashfs.FS).SetBudget(3 + rng.IntN(40))
		for i := range 5 {
			for _, p := range []*peer{a, b} {
				text := fmt.Sprintf("%p r%d m%d", p, round, i)
				if id, err := p.agent.Send(ctxT(t), conn[p], []byte(text)); err == nil {
					accepted[p][text] = true
					if p == b {
						sentAs[text] = id
					}
				}
			}
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		victim.stop()
		victim.fs.(*crashfs.FS).SetBudget(-1)
		victim.start()
		pending, err := victim.agent.Pending(conn[victim])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range pending {
			recovered[victim][string(m.Body)] = true
		}
	}
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
	b.ev.wait(t, "b answered", 60*time.Second, func() bool {
		return slices.ContainsFunc(b.ev.resyncs[cb], func(ev ResyncEvent) bool { return ev.Status == ResyncAnswered })
	})
	// What b sent before the request arrived, sealed with a ratchet state
	// the restored a does not have, may be unreadable: b is told which
	// (the chat layer marks them for sending again). Everything else must
	// arrive.
	b.ev.mu.Lock()
	for _, ev := range b.ev.resyncs[cb] {
		for text, id := range sentAs {
			if ev.UnreadFrom <= id && id <= ev.UnreadTo {
				delete(accepted[b], text)
				recovered[b][text] = true // it may arrive all the same
			}
		}
	}
	b.ev.mu.Unlock()
	b.ev.wait(t, "b receives everything a sent", 120*time.Second, func() bool { return has(b.ev.received[cb], accepted[a]) })
	a.ev.wait(t, "a receives everything b sent", 120*time.Second, func() bool { return has(a.ev.received[ca], accepted[b]) })
	time.Sleep(scaled(200 * time.Millisecond)) // anything extra would arrive now
	for _, tc := range []struct{ to, from *peer }{{b, a}, {a, b}} {
		tc.to.ev.mu.Lock()
		got := map[string]int{}
		for _, m := range tc.to.ev.received[conn[tc.to]] {
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
			if strings.HasPrefix(text, "0x") && !accepted[tc.from][text] && !recovered[tc.from][text] {
				t.Errorf("%q received, but Send failed and Pending never listed it", text)
			}
		}
	}
	for _, p := range []*peer{a, b} {
		if info, err := p.agent.Connection(conn[p]); err != nil || info.Resync != 0 {
			t.Errorf("re-sync not finished: %v %v", info.Resync, err)
		}
	}
	t.Logf("a sent %d, b sent %d across 8 crashes", len(accepted[a]), len(accepted[b]))
}
