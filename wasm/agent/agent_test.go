//go:build !js

package agent

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/crypto/vault"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"github.com/wisp-chat/wisp/wasm/store"
)

// recorder is an Events implementation that keeps everything, exactly
// once per (connection, ID), as the chat layer does.
type recorder struct {
	mu         sync.Mutex
	connected  map[ConnID][]byte
	connecting map[ConnID][]byte
	received   map[ConnID]map[uint64]Received
	dupes      int
	sent       map[ConnID]map[uint64]bool
	delivered  map[ConnID]map[uint64]bool
	failed     map[ConnID]map[uint64]error
	deleted    map[ConnID]bool
	problems   []error
	resyncs    map[ConnID][]ResyncEvent
	changed    chan struct{}
}

func newRecorder() *recorder {
	return &recorder{
		connected: map[ConnID][]byte{}, connecting: map[ConnID][]byte{}, received: map[ConnID]map[uint64]Received{},
		sent: map[ConnID]map[uint64]bool{}, delivered: map[ConnID]map[uint64]bool{},
		failed: map[ConnID]map[uint64]error{}, deleted: map[ConnID]bool{}, resyncs: map[ConnID][]ResyncEvent{},
		changed: make(chan struct{}, 1),
	}
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) Connecting(c ConnID, info []byte) {
	r.mu.Lock()
	r.connecting[c] = info
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Connected(c ConnID, info []byte) {
	r.mu.Lock()
	r.connected[c] = info
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Received(c ConnID, m Received) error {
	if m.Commit != nil && m.ID%2 == 1 {
		// Half the messages as the chat layer stores them: a record of
		// its own and the connection record in one batch, the message
		// kept only once that batch is applied (TestRestartSafety crashes
		// it half-way on a file system where a batch is a sequence).
		var b store.Batch
		b.Put(store.Key("rec").Join(fmt.Sprintf("%x", m.ID)), m.Body)
		if err := m.Commit(&b); err != nil {
			return err
		}
	}
	r.mu.Lock()
	if r.received[c] == nil {
		r.received[c] = map[uint64]Received{}
	}
	if _, ok := r.received[c][m.ID]; ok {
		r.dupes++
	}
	m.Body = append([]byte(nil), m.Body...)
	r.received[c][m.ID] = m
	r.mu.Unlock()
	r.poke()
	return nil
}

// batchRecorder is a recorder that takes the agent's batches as the chat
// layer does (BatchEvents): a record of its own written with the agent's
// change, and the event recorded only once that batch is applied.
type batchRecorder struct{ *recorder }

func (r batchRecorder) SentWith(c ConnID, id uint64, commit func(*store.Batch) error) error {
	var b store.Batch
	b.Put(store.Key("sent").Join(fmt.Sprintf("%x", id)), []byte("sent"))
	if err := commit(&b); err != nil {
		return err
	}
	r.Sent(c, id)
	return nil
}

func (r batchRecorder) DeliveredWith(c ConnID, ids []uint64, commit func(*store.Batch) error) error {
	var b store.Batch
	for _, id := range ids {
		b.Put(store.Key("delivered").Join(fmt.Sprintf("%x", id)), []byte("delivered"))
	}
	if err := commit(&b); err != nil {
		return err
	}
	r.Delivered(c, ids)
	return nil
}

// useBatches restarts p with events that take the agent's batches.
func (p *peer) useBatches() {
	p.stop()
	p.batches = true
	p.start()
}

func setIn(m map[ConnID]map[uint64]bool, c ConnID, id uint64) {
	if m[c] == nil {
		m[c] = map[uint64]bool{}
	}
	m[c][id] = true
}

func (r *recorder) Sent(c ConnID, id uint64) {
	r.mu.Lock()
	setIn(r.sent, c, id)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Delivered(c ConnID, ids []uint64) {
	r.mu.Lock()
	for _, id := range ids {
		setIn(r.delivered, c, id)
	}
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Failed(c ConnID, id uint64, err error) {
	r.mu.Lock()
	if r.failed[c] == nil {
		r.failed[c] = map[uint64]error{}
	}
	r.failed[c][id] = err
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) PeerDeleted(c ConnID) {
	r.mu.Lock()
	r.deleted[c] = true
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Resync(c ConnID, ev ResyncEvent) {
	r.mu.Lock()
	r.resyncs[c] = append(r.resyncs[c], ev)
	r.mu.Unlock()
	r.poke()
}

// resynced: c reported ResyncDone (under the lock).
func (r *recorder) resynced(c ConnID) (ResyncEvent, bool) {
	for _, ev := range r.resyncs[c] {
		if ev.Status == ResyncDone {
			return ev, true
		}
	}
	return ResyncEvent{}, false
}

func (r *recorder) Problem(c ConnID, err error) {
	r.mu.Lock()
	r.problems = append(r.problems, err)
	r.mu.Unlock()
}

// scaled stretches a test deadline by WISP_TEST_SCALE (or its alias
// WISP_TEST_SLOW; default 1), the one factor every deadline in these
// tests derives from, for slow or busy machines.
func scaled(d time.Duration) time.Duration {
	for _, name := range []string{"WISP_TEST_SCALE", "WISP_TEST_SLOW"} {
		if f, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && f >= 1 {
			return time.Duration(float64(d) * f)
		}
	}
	return d
}

// wait polls cond (under the recorder's lock) until it holds, for at
// most the scaled timeout.
func (r *recorder) wait(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(scaled(timeout))
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out waiting for %s (problems: %v)", what, r.problems)
		}
	}
}

// waitSteady is wait for a long transfer: it fails only when progress (a
// count that grows as the transfer advances) stays the same for stall
// (scaled), however long the whole takes on a loaded machine. progress
// and done run under the lock.
func (r *recorder) waitSteady(t testing.TB, what string, stall time.Duration, progress func() int, done func() bool) {
	t.Helper()
	for {
		r.mu.Lock()
		n := progress()
		r.mu.Unlock()
		finished := false
		r.wait(t, what+" (no progress)", stall, func() bool {
			finished = done()
			return finished || progress() != n
		})
		if finished {
			return
		}
	}
}

// hasBodies reports whether every body in want was received on c (extra
// messages are allowed: the caller checks them). Call it in a wait's
// cond, under the lock.
func (r *recorder) hasBodies(c ConnID, want ...string) bool {
	got := r.received[c]
	if len(got) < len(want) { // cheap: each received message has its own ID
		return false
	}
	seen := make(map[string]bool, len(got))
	for _, m := range got {
		seen[string(m.Body)] = true
	}
	for _, w := range want {
		if !seen[w] {
			return false
		}
	}
	return true
}

// hasIDs reports whether set (r.sent[c], r.delivered[c]) holds every ID
// of ids. Call it in a wait's cond, under the lock.
func hasIDs(set map[uint64]bool, ids []uint64) bool {
	if len(set) < len(ids) {
		return false
	}
	for _, id := range ids {
		if !set[id] {
			return false
		}
	}
	return true
}

// peer is one profile: an agent over its own store.
type peer struct {
	delay    time.Duration  // receipt delay (0: the default)
	opts     client.Options // relay client options (zero: fast test backoff)
	rot      RotationPolicy // queue rotation (zero: the defaults)
	restored bool           // the next start follows a restore (Options.Restored)
	t        testing.TB
	fs       hackpadfs.FS
	sealer   store.Sealer
	ev       *recorder
	batches  bool // the events take the agent's batches (batchRecorder)
	relays   *Relays
	agent    *Agent
}

func newPeer(t testing.TB) *peer {
	t.Helper()
	fsys, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	key, err := vault.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, fs: fsys, sealer: store.VaultSealer(key), ev: newRecorder()}
	p.start()
	t.Cleanup(p.stop)
	return p
}

// start (re)opens the agent over the same storage.
func (p *peer) start() {
	p.t.Helper()
	st, err := store.Open(p.fs, "profile", p.sealer)
	if err != nil {
		p.t.Fatal(err)
	}
	opts := p.opts
	if opts.MinBackoff == 0 && opts.MaxBackoff == 0 {
		opts = client.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}
	}
	p.relays = NewRelays(opts, nil, nil)
	p.relays.AllowLocalRelays() // the test relays are on loopback
	var ev Events = p.ev
	if p.batches {
		ev = batchRecorder{p.ev}
	}
	p.agent, err = New(Options{Store: st, Relays: p.relays, Events: ev, PostQuantum: true, ReceiptDelay: p.delay, Rotation: p.rot, Restored: p.restored})
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.agent.Start(ctxT(p.t)); err != nil {
		p.t.Fatal(err)
	}
}

// stop drops the agent without any goodbye (also used to simulate a crash).
func (p *peer) stop() {
	if p.agent == nil {
		return
	}
	p.agent.Close()
	p.relays.Close()
	p.agent = nil
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), scaled(30*time.Second))
	t.Cleanup(cancel)
	return ctx
}

// connect makes a connection from a (inviting on ra) to b (receiving on rb).
func connect(t testing.TB, a, b *peer, ra, rb *relaytest.Relay) (ConnID, ConnID) {
	t.Helper()
	ca, inv, err := a.agent.CreateInvitation(ctxT(t), ra.Addr(), []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	link, err := inv.Link("http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseLink(link, Versions)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.agent.Join(ctxT(t), parsed, rb.Addr(), []byte("bob"))
	if err != nil {
		t.Fatal(err)
	}
	a.ev.wait(t, "a connected", 20*time.Second, func() bool { return a.ev.connected[ca] != nil })
	b.ev.wait(t, "b connected", 20*time.Second, func() bool { return b.ev.connected[cb] != nil })
	if got := string(a.ev.connecting[ca]); got != "bob" {
		t.Errorf("a saw %q connecting, want bob", got)
	}
	if got := string(a.ev.connected[ca]); got != "bob" {
		t.Errorf("a sees %q, want bob", got)
	}
	if got := string(b.ev.connected[cb]); got != "alice" {
		t.Errorf("b sees %q, want alice", got)
	}
	ia, err := a.agent.Connection(ca)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := b.agent.Connection(cb)
	if err != nil {
		t.Fatal(err)
	}
	if len(ia.SecurityCode) != 32 || string(ia.SecurityCode) != string(ib.SecurityCode) {
		t.Errorf("security codes differ: %x vs %x", ia.SecurityCode, ib.SecurityCode)
	}
	// Route is Connection's view of where it receives.
	if r, err := a.agent.Route(ca); err != nil || r.State != ia.State || r.Relay != ia.Relay || r.NextRelay != ia.NextRelay || r.Relay == "" {
		t.Errorf("Route = %+v, %v; Connection says %s on %q (next %q)", r, err, ia.State, ia.Relay, ia.NextRelay)
	}
	if _, err := a.agent.Route("nope"); err == nil {
		t.Error("Route of an unknown connection")
	}
	return ca, cb
}

// TestQuotaMarker: the relay's marker for a full queue (an empty body
// with the quota flag) is acknowledged without a problem; an empty body
// without the flag is still reported as malformed.
func TestQuotaMarker(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	ca, _ := connect(t, a, b, ra, rb)
	var rcv wire.QueueID
	a.agent.mu.Lock()
	for q, id := range a.agent.byRcv {
		if id == ca {
			rcv = q
		}
	}
	a.agent.mu.Unlock()
	if !a.agent.HandleMessage(rcv, wire.Message{Quota: true}) {
		t.Error("the quota marker was not acknowledged")
	}
	a.ev.mu.Lock()
	n := len(a.ev.problems)
	a.ev.mu.Unlock()
	if n != 0 {
		t.Errorf("the quota marker was reported: %v", a.ev.problems)
	}
	a.agent.HandleMessage(rcv, wire.Message{})
	a.ev.wait(t, "the empty message reported", 5*time.Second, func() bool { return len(a.ev.problems) == 1 })
}

func TestConnectAndExchange(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	a.useBatches() // one side each way: Sent and Delivered, SentWith and DeliveredWith
	ca, cb := connect(t, a, b, ra, rb)

	n := 1000
	if raceEnabled {
		n = 300 // the same paths; the figure below means something only without -race
	}
	var toB, toA []string     // the bodies each side sends
	var fromA, fromB []uint64 // the IDs Send returned
	start := time.Now()
	for i := range n {
		toB, toA = append(toB, fmt.Sprintf("a->b %d", i)), append(toA, fmt.Sprintf("b->a %d", i))
		id, err := a.agent.Send(ctxT(t), ca, []byte(toB[i]))
		if err != nil {
			t.Fatal(err)
		}
		fromA = append(fromA, id)
		if id, err = b.agent.Send(ctxT(t), cb, []byte(toA[i])); err != nil {
			t.Fatal(err)
		}
		fromB = append(fromB, id)
	}
	// The exact sets of bodies and IDs, not counts. About a minute with
	// -race on an idle 2-core machine, five on a loaded one: fail on a
	// stall, not on the total.
	b.ev.waitSteady(t, "b receives all", time.Minute, func() int { return len(b.ev.received[cb]) },
		func() bool { return b.ev.hasBodies(cb, toB...) })
	a.ev.waitSteady(t, "a receives all", time.Minute, func() int { return len(a.ev.received[ca]) },
		func() bool { return a.ev.hasBodies(ca, toA...) })
	elapsed := time.Since(start)
	t.Logf("%d messages each way in %v: %.0f msgs/s", n, elapsed, float64(2*n)/elapsed.Seconds())
	a.ev.waitSteady(t, "a's messages delivered", time.Minute, func() int { return len(a.ev.sent[ca]) + len(a.ev.delivered[ca]) },
		func() bool { return hasIDs(a.ev.sent[ca], fromA) && hasIDs(a.ev.delivered[ca], fromA) })
	b.ev.waitSteady(t, "b's messages delivered", time.Minute, func() int { return len(b.ev.sent[cb]) + len(b.ev.delivered[cb]) },
		func() bool { return hasIDs(b.ev.sent[cb], fromB) && hasIDs(b.ev.delivered[cb], fromB) })

	check := func(r *recorder, c ConnID, prefix string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		bodies := map[string]bool{}
		for id, m := range r.received[c] {
			if m.Integrity.BadHash {
				t.Errorf("%s: message %d has a bad hash", prefix, id)
			}
			bodies[string(m.Body)] = true
		}
		if r.dupes != 0 {
			t.Errorf("%s: %d duplicates", prefix, r.dupes)
		}
		if len(r.received[c]) != n {
			t.Errorf("%s: %d messages received, want %d", prefix, len(r.received[c]), n)
		}
		for i := range n {
			if want := fmt.Sprintf("%s %d", prefix, i); !bodies[want] {
				t.Errorf("missing %q", want)
				return
			}
		}
		if len(r.problems) != 0 {
			t.Errorf("problems: %v", r.problems)
		}
	}
	check(b.ev, cb, "a->b")
	check(a.ev, ca, "b->a")
}
