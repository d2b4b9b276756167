//go:build !js

package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/wisp-chat/wisp/wasm/internal/crashfs"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"io/fs"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

func TestSecondJoinerFails(t *testing.T) {
	ra, rb, rc := relaytest.Start(t), relaytest.Start(t), relaytest.Start(t)
	a, b, c := newPeer(t), newPeer(t), newPeer(t)
	ca, inv, err := a.agent.CreateInvitation(ctxT(t), ra.Addr(), []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.agent.Join(ctxT(t), inv, rb.Addr(), []byte("bob"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.agent.Join(ctxT(t), inv, rc.Addr(), []byte("carol")); !errors.Is(err, ErrInvitationUsed) {
		t.Fatalf("second join: %v, want ErrInvitationUsed", err)
	}
	if d := time.Since(start); d > scaled(10*time.Second) {
		t.Errorf("the second join took %v to fail", d)
	}
	if n := len(c.agent.Connections()); n != 0 {
		t.Errorf("the failed join left %d connections", n)
	}
	// The first connection is unaffected.
	a.ev.wait(t, "a connected", 20*time.Second, func() bool { return a.ev.connected[ca] != nil })
	b.ev.wait(t, "b connected", 20*time.Second, func() bool { return b.ev.connected[cb] != nil })
	if _, err := a.agent.Send(ctxT(t), ca, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	b.ev.wait(t, "message", 20*time.Second, func() bool { return b.ev.hasBodies(cb, "still here") })
}

func TestCancelInvitation(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	ca, inv, err := a.agent.CreateInvitation(ctxT(t), ra.Addr(), []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.agent.Delete(ctxT(t), ca); err != nil {
		t.Fatal(err)
	}
	if _, err := b.agent.Join(ctxT(t), inv, rb.Addr(), []byte("bob")); !errors.Is(err, ErrInvitationUsed) {
		t.Fatalf("joining a cancelled invitation: %v, want ErrInvitationUsed", err)
	}
	if _, err := a.agent.Connection(ca); !errors.Is(err, ErrNoConnection) {
		t.Errorf("cancelled connection still there: %v", err)
	}
}

func TestDeleteConnection(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	ca, cb := connect(t, a, b, ra, rb)
	if _, err := a.agent.Send(ctxT(t), ca, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	b.ev.wait(t, "message", 20*time.Second, func() bool { return b.ev.hasBodies(cb, "bye") })
	// Keep a's queue credentials to check the relay forgot the queue.
	rec, err := a.agent.loadConn(ca)
	if err != nil {
		t.Fatal(err)
	}
	relay, sub, err := rec.Rcv.subscription()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.agent.Delete(ctxT(t), ca); err != nil {
		t.Fatal(err)
	}
	b.ev.wait(t, "b learns", 20*time.Second, func() bool { return b.ev.deleted[cb] })
	if info, err := b.agent.Connection(cb); err != nil || info.State != StatePeerDeleted {
		t.Errorf("b's connection: %+v, %v", info, err)
	}
	if _, err := b.agent.Send(ctxT(t), cb, []byte("anyone?")); !errors.Is(err, ErrNotConnected) {
		t.Errorf("sending to a deleted contact: %v, want ErrNotConnected", err)
	}
	cl, err := client.Dial(ctxT(t), relay, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, _, err := cl.Get(ctxT(t), sub); !errors.Is(err, wire.CodeAuth) {
		t.Errorf("GET on the deleted queue: %v, want AUTH", err)
	}
	// Nothing of the connection is left in a's storage.
	err = hackpadfs.WalkDir(a.fs, "profile/conn", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

// TestRelayOutage stops the relay b receives on while a sends, starts it
// again, and checks delivery resumes with no action.
func TestRelayOutage(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	ca, cb := connect(t, a, b, ra, rb)
	rb.Stop()
	var bodies []string
	var ids []uint64
	for i := range 10 {
		bodies = append(bodies, fmt.Sprintf("during outage %d", i))
		id, err := a.agent.Send(ctxT(t), ca, []byte(bodies[i]))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	time.Sleep(500 * time.Millisecond)
	a.ev.mu.Lock()
	sent := len(a.ev.sent[ca])
	a.ev.mu.Unlock()
	if sent != 0 {
		t.Errorf("%d messages reported sent while the relay was down", sent)
	}
	rb.Restart()
	b.ev.wait(t, "delivery after the outage", 60*time.Second, func() bool { return b.ev.hasBodies(cb, bodies...) })
	a.ev.wait(t, "receipts after the outage", 60*time.Second, func() bool { return hasIDs(a.ev.delivered[ca], ids) })
	b.ev.mu.Lock()
	defer b.ev.mu.Unlock()
	for _, m := range b.ev.received[cb] {
		if m.Integrity != (Integrity{}) {
			t.Errorf("message %d: %+v", m.ID, m.Integrity)
		}
	}
}

// TestTamperedMessage feeds the agent a delivered message with one bit
// flipped anywhere: it is dropped and reported, acknowledged (so it does not
// block the queue), and the connection keeps working.
func TestTamperedMessage(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	ca, cb := connect(t, a, b, ra, rb)
	// Build a genuine message from a to b without sending it.
	h, _ := a.agent.handle(ca)
	h.mu.Lock()
	rec, err := a.agent.loadConn(ca)
	if err != nil {
		t.Fatal(err)
	}
	e, err := a.agent.seal(rec, KindChat, []byte("genuine"), rec.SentID+1, rec.SentHash)
	h.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := a.agent.sendBody(rec.Snd, e)
	if err != nil {
		t.Fatal(err)
	}
	brec, err := b.agent.loadConn(cb)
	if err != nil {
		t.Fatal(err)
	}
	for _, bit := range []int{0, 8*32 + 3, 8 * 100, 8*len(sealed) - 1, 8 * 5000} {
		body := bytes.Clone(sealed)
		body[bit/8] ^= 1 << (bit % 8)
		if !b.agent.HandleMessage(brec.Rcv.RcvID, wire.Message{Body: body, Time: time.Now()}) {
			t.Errorf("bit %d: tampered message not acknowledged", bit)
		}
	}
	for _, body := range [][]byte{nil, sealed[:100], append(bytes.Clone(sealed), 0)} {
		if !b.agent.HandleMessage(brec.Rcv.RcvID, wire.Message{Body: body}) {
			t.Errorf("%d-byte message not acknowledged", len(body))
		}
	}
	b.ev.mu.Lock()
	problems, got := len(b.ev.problems), len(b.ev.received[cb])
	b.ev.mu.Unlock()
	if problems != 8 || got != 0 {
		t.Errorf("%d problems reported, %d messages received; want 8 and 0", problems, got)
	}
	// The genuine message still opens, and the connection still works.
	if !b.agent.HandleMessage(brec.Rcv.RcvID, wire.Message{Body: sealed, Time: time.Now()}) {
		t.Fatal("genuine message not acknowledged")
	}
	b.ev.wait(t, "genuine message", 5*time.Second, func() bool { return b.ev.hasBodies(cb, "genuine") })
	if _, err := b.agent.Send(ctxT(t), cb, []byte("reply")); err != nil {
		t.Fatal(err)
	}
	a.ev.wait(t, "reply", 20*time.Second, func() bool { return a.ev.hasBodies(ca, "reply") })
}

// TestNoPlaintextAtRest checks that nothing in a profile's storage
// contains a message text or the contact's name.
func TestNoPlaintextAtRest(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	ca, cb := connect(t, a, b, ra, rb)
	secret := "the treasure is under the third oak"
	if _, err := a.agent.Send(ctxT(t), ca, []byte(secret)); err != nil {
		t.Fatal(err)
	}
	b.ev.wait(t, "message", 20*time.Second, func() bool { return b.ev.hasBodies(cb, secret) })
	for _, p := range []*peer{a, b} {
		err := hackpadfs.WalkDir(p.fs, ".", func(name string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := hackpadfs.ReadFile(p.fs, name)
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a temporary file renamed while the walk ran (receipts are still being written)
			}
			if err != nil {
				return err
			}
			for _, needle := range []string{secret, "alice", "bob", "treasure"} {
				if bytes.Contains(data, []byte(needle)) {
					t.Errorf("%s contains %q", name, needle)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeleteFailureSendsNothingMore: a Delete that cannot reach our relay
// fails, keeps the connection, and refuses further sends (the notice
// already used the next message key); once the relay is back, Delete
// finishes and the peer has seen no repeat and no broken chain.
func TestDeleteFailureSendsNothingMore(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	ca, cb := connect(t, a, b, ra, rb)
	if _, err := a.agent.Send(ctxT(t), ca, []byte("one")); err != nil {
		t.Fatal(err)
	}
	b.ev.wait(t, "one", 20*time.Second, func() bool { return b.ev.hasBodies(cb, "one") })
	ra.Stop() // a's receiving relay
	ctx, cancel := context.WithTimeout(context.Background(), scaled(2*time.Second))
	defer cancel()
	if err := a.agent.Delete(ctx, ca); err == nil {
		t.Fatal("Delete succeeded with the relay down")
	}
	if _, err := a.agent.Send(ctxT(t), ca, []byte("two")); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send after a failed Delete: %v, want ErrNotConnected", err)
	}
	b.ev.wait(t, "the notice", 20*time.Second, func() bool { return b.ev.deleted[cb] })
	ra.Restart()
	if err := a.agent.Delete(ctxT(t), ca); err != nil {
		t.Fatal(err)
	}
	b.ev.mu.Lock()
	defer b.ev.mu.Unlock()
	if len(b.ev.received[cb]) != 1 || len(b.ev.problems) != 0 {
		t.Errorf("b received %d messages, problems %v", len(b.ev.received[cb]), b.ev.problems)
	}
}

// TestReceiptsSurviveRestart: receipts queued but not sent when the
// receiver stops are sent after it starts again.
func TestReceiptsSurviveRestart(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	ca, cb := connect(t, a, b, ra, rb)
	b.stop()
	b.delay = time.Hour // receipts would wait an hour
	b.start()
	id, err := a.agent.Send(ctxT(t), ca, []byte("ack me"))
	if err != nil {
		t.Fatal(err)
	}
	b.ev.wait(t, "message", 20*time.Second, func() bool { return b.ev.hasBodies(cb, "ack me") })
	b.stop()
	b.delay = 0
	b.start()
	a.ev.wait(t, "delivered after the restart", 20*time.Second, func() bool { return a.ev.delivered[ca][id] })
}

// TestReconnectNow: after an outage, Reconnect makes a client waiting in a
// long backoff connect again at once.
func TestReconnectNow(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	b.stop()
	// Scaled like the wait below, which must stay shorter than the backoff.
	b.opts = client.Options{MinBackoff: scaled(20 * time.Second), MaxBackoff: scaled(40 * time.Second)}
	b.start()
	ca, cb := connect(t, a, b, ra, rb)
	rb.Stop()
	time.Sleep(200 * time.Millisecond) // b notices and starts its 10–20 s backoff
	rb.Restart()
	start := time.Now()
	b.relays.Reconnect()
	if _, err := a.agent.Send(ctxT(t), ca, []byte("are you back?")); err != nil {
		t.Fatal(err)
	}
	b.ev.wait(t, "delivery after Reconnect", 8*time.Second, func() bool { return b.ev.hasBodies(cb, "are you back?") })
	t.Logf("delivered %v after Reconnect", time.Since(start).Round(time.Millisecond))
}

// TestMessageDuringClose: a message the relay delivers while the agent
// is closing is left unacknowledged (the next session gets it again);
// acknowledging it would lose it.
func TestMessageDuringClose(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	_, cb := connect(t, a, b, ra, rb)
	rcv := b.record(t, cb).Rcv.RcvID
	b.agent.Close()
	if b.agent.HandleMessage(rcv, wire.Message{Body: make([]byte, wire.MaxBodySize)}) {
		t.Error("a message delivered during Close was acknowledged")
	}
	b.relays.Close()
	b.agent = nil
}

// TestStorageFailureRetried: a message whose storage fails is handled
// again once storage works, without a reconnect (the relay would not
// deliver it again on the same session).
func TestStorageFailureRetried(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	onCrashFS(t, b)
	ca, cb := connect(t, a, b, ra, rb)
	cfs := b.fs.(*crashfs.FS)
	cfs.SetBudget(0) // every write fails from now on
	id, err := a.agent.Send(ctxT(t), ca, []byte("while b's storage fails"))
	if err != nil {
		t.Fatal(err)
	}
	b.ev.wait(t, "the message offered to b", 30*time.Second, func() bool { return len(b.ev.received[cb]) == 1 })
	time.Sleep(scaled(300 * time.Millisecond))
	if got := b.record(t, cb).RcvdID; got >= id {
		t.Fatalf("b recorded message %d while its storage failed", got)
	}
	cfs.SetBudget(-1) // storage works again; no restart, no reconnect
	a.ev.wait(t, "the receipt: b stored it", 30*time.Second, func() bool { return a.ev.delivered[ca][id] })
	if got := b.record(t, cb).RcvdID; got < id {
		t.Errorf("b's record is at message %d, want %d", got, id)
	}
}
