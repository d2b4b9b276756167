//go:build !js

package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/internal/crashfs"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"github.com/wisp-chat/wisp/wasm/store"
)

// addrEvents adds the optional AddressEvents to a recorder. Its lists are
// guarded by the recorder's lock, so recorder.wait conditions can read them.
type addrEvents struct {
	*recorder
	requests []Request
	dropped  []Request
}

func (e *addrEvents) ContactRequest(r Request) {
	e.mu.Lock()
	e.requests = append(e.requests, r)
	e.mu.Unlock()
	e.poke()
}

func (e *addrEvents) RequestDropped(r Request) {
	e.mu.Lock()
	e.dropped = append(e.dropped, r)
	e.mu.Unlock()
	e.poke()
}

var _ AddressEvents = (*addrEvents)(nil)

// addrPeer is a peer whose agent also receives AddressEvents.
type addrPeer struct {
	*peer
	aev *addrEvents
}

func newAddrPeer(t *testing.T) *addrPeer {
	t.Helper()
	p := newPeer(t)
	ap := &addrPeer{peer: p, aev: &addrEvents{recorder: p.ev}}
	p.stop()
	ap.start()
	return ap
}

// start (re)opens the agent over the same storage, with AddressEvents.
func (p *addrPeer) start() {
	p.t.Helper()
	st, err := store.Open(p.fs, "profile", p.sealer)
	if err != nil {
		p.t.Fatal(err)
	}
	p.relays = NewRelays(client.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}, nil, nil)
	p.relays.AllowLocalRelays()
	p.agent, err = New(Options{Store: st, Relays: p.relays, Events: p.aev, PostQuantum: true})
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.agent.Start(ctxT(p.t)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *addrPeer) wait(what string, cond func() bool) {
	p.t.Helper()
	p.ev.wait(p.t, what, 30*time.Second, cond) // scaled by WISP_TEST_SCALE
}

// createAddress makes p's address on r and returns it as parsed from its link.
func (p *addrPeer) createAddress(r *relaytest.Relay) ContactAddress {
	p.t.Helper()
	info, err := p.agent.CreateAddress(ctxT(p.t), r.Addr(), Tag{})
	if err != nil {
		p.t.Fatal(err)
	}
	if !info.Enabled {
		p.t.Error("a new address is off")
	}
	link, err := info.Address.Link("http://127.0.0.1:8080")
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := ParseAddress(link, Versions)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// addressRcv is the recipient ID of p's address queue.
func (p *addrPeer) addressRcv() wire.QueueID {
	p.t.Helper()
	r, err := p.agent.loadAddress()
	if err != nil {
		p.t.Fatal(err)
	}
	return r.Queue.RcvID
}

func (p *addrPeer) requests() []Request {
	p.t.Helper()
	rs, err := p.agent.Requests()
	if err != nil {
		p.t.Fatal(err)
	}
	return rs
}

// problems is how many problems p reported.
func (p *addrPeer) problems() int {
	p.ev.mu.Lock()
	defer p.ev.mu.Unlock()
	return len(p.ev.problems)
}

// craft seals a request to addr carrying a fresh test invitation.
func craft(t testing.TB, from *Agent, addr ContactAddress, info string) []byte {
	t.Helper()
	body, err := from.requestBody(addr, testInvitation("127.0.0.1"), []byte(info))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// exchange checks that ca (on a) and cb (on b) carry messages both ways.
func exchange(t *testing.T, a, b *addrPeer, ca, cb ConnID) {
	t.Helper()
	if _, err := a.agent.Send(ctxT(t), ca, []byte("hello from the owner")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.agent.Send(ctxT(t), cb, []byte("hello from the requester")); err != nil {
		t.Fatal(err)
	}
	b.wait("the owner's message", func() bool {
		for _, m := range b.ev.received[cb] {
			if string(m.Body) == "hello from the owner" {
				return true
			}
		}
		return false
	})
	a.wait("the requester's message", func() bool {
		for _, m := range a.ev.received[ca] {
			if string(m.Body) == "hello from the requester" {
				return true
			}
		}
		return false
	})
}

// askAddress makes b ask a's address and waits until a has it.
func askAddress(t *testing.T, a, b *addrPeer, addr ContactAddress, rb *relaytest.Relay, info string) (ConnID, Request) {
	t.Helper()
	a.ev.mu.Lock()
	before := len(a.aev.requests)
	a.ev.mu.Unlock()
	cb, err := b.agent.RequestContact(ctxT(t), addr, rb.Addr(), []byte(info))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := b.agent.Connection(cb); err != nil || st.State != StateInvited {
		t.Fatalf("the requester's connection: %+v, %v", st, err)
	}
	a.wait("the request", func() bool { return len(a.aev.requests) > before })
	a.ev.mu.Lock()
	defer a.ev.mu.Unlock()
	return cb, a.aev.requests[len(a.aev.requests)-1]
}

// TestAddressRequestAccept: Bob asks Alice's address; Alice sees his
// profile, accepts, and they talk on a connection of new queues.
func TestAddressRequestAccept(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newAddrPeer(t), newAddrPeer(t)
	addr := a.createAddress(ra)
	if _, err := a.agent.CreateAddress(ctxT(t), ra.Addr(), Tag{}); !errors.Is(err, ErrAddressExists) {
		t.Errorf("a second address: %v, want ErrAddressExists", err)
	}
	cb, req := askAddress(t, a, b, addr, rb, "bob")
	if string(req.Info) != "bob" || req.Tag != (Tag{}) {
		t.Errorf("request %q, tag %+v", req.Info, req.Tag)
	}
	if rs := a.requests(); len(rs) != 1 || rs[0].ID != req.ID || string(rs[0].Info) != "bob" {
		t.Fatalf("waiting requests: %+v", rs)
	}
	ca, err := a.agent.AcceptRequest(ctxT(t), req.ID, ra.Addr(), []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	a.wait("a connected", func() bool { return a.ev.connected[ca] != nil })
	b.wait("b connected", func() bool { return b.ev.connected[cb] != nil })
	if got := string(a.ev.connected[ca]); got != "bob" {
		t.Errorf("the owner sees %q", got)
	}
	if got := string(b.ev.connecting[cb]); got != "alice" {
		t.Errorf("the requester saw %q accept", got)
	}
	if rs := a.requests(); len(rs) != 0 {
		t.Errorf("%d requests left after accepting", len(rs))
	}
	// The connection's queues are not the address's.
	rec, _ := a.agent.loadConn(ca)
	if rec.Rcv.RcvID == a.addressRcv() {
		t.Error("the new connection receives on the address queue")
	}
	ia, _ := a.agent.Connection(ca)
	ib, _ := b.agent.Connection(cb)
	if len(ia.SecurityCode) != 32 || !bytes.Equal(ia.SecurityCode, ib.SecurityCode) {
		t.Error("security codes differ")
	}
	exchange(t, a, b, ca, cb)
	if _, err := a.agent.AcceptRequest(ctxT(t), req.ID, ra.Addr(), nil); !errors.Is(err, ErrNoRequest) {
		t.Errorf("accepting twice: %v, want ErrNoRequest", err)
	}
	// Own address: refused before anything is created.
	n := len(a.agent.Connections())
	if _, err := a.agent.RequestContact(ctxT(t), addr, ra.Addr(), nil); !errors.Is(err, ErrOwnAddress) {
		t.Errorf("asking our own address: %v", err)
	}
	if len(a.agent.Connections()) != n {
		t.Error("asking our own address left a connection")
	}
	if p := a.problems() + b.problems(); p != 0 {
		t.Errorf("problems: %v %v", a.ev.problems, b.ev.problems)
	}
}

// TestAddressReject: a rejected request is gone, the requester's side
// stays invited (nobody tells it), and a repeat of it is ignored.
func TestAddressReject(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newAddrPeer(t), newAddrPeer(t)
	addr := a.createAddress(ra)
	cb, req := askAddress(t, a, b, addr, rb, "bob")
	if err := a.agent.RejectRequest(req.ID); err != nil {
		t.Fatal(err)
	}
	if rs := a.requests(); len(rs) != 0 {
		t.Fatalf("%d requests after rejecting", len(rs))
	}
	if err := a.agent.RejectRequest(req.ID); !errors.Is(err, ErrNoRequest) {
		t.Errorf("rejecting twice: %v", err)
	}
	for _, bad := range []string{"", "x", "../state", "00000000000000000001-zz"} {
		if err := a.agent.RejectRequest(bad); !errors.Is(err, ErrNoRequest) {
			t.Errorf("RejectRequest(%q): %v", bad, err)
		}
		if _, err := a.agent.AcceptRequest(ctxT(t), bad, ra.Addr(), nil); !errors.Is(err, ErrNoRequest) {
			t.Errorf("AcceptRequest(%q): %v", bad, err)
		}
	}
	if st, err := b.agent.Connection(cb); err != nil || st.State != StateInvited {
		t.Errorf("the requester after a rejection: %+v, %v", st, err)
	}
	// The requester withdraws; a later request from them works anew.
	if err := b.agent.Delete(ctxT(t), cb); err != nil {
		t.Fatal(err)
	}
	cb2, req2 := askAddress(t, a, b, addr, rb, "bob again")
	if _, err := a.agent.AcceptRequest(ctxT(t), req2.ID, ra.Addr(), []byte("alice")); err != nil {
		t.Fatal(err)
	}
	b.wait("b connected", func() bool { return b.ev.connected[cb2] != nil })
}

// TestAddressWithdrawn: accepting a request whose requester cancelled it
// fails with ErrNoRequest, forgets it and leaves no connection.
func TestAddressWithdrawn(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newAddrPeer(t), newAddrPeer(t)
	addr := a.createAddress(ra)
	cb, req := askAddress(t, a, b, addr, rb, "bob")
	if err := b.agent.Delete(ctxT(t), cb); err != nil {
		t.Fatal(err)
	}
	n := len(a.agent.Connections())
	if _, err := a.agent.AcceptRequest(ctxT(t), req.ID, ra.Addr(), []byte("alice")); !errors.Is(err, ErrNoRequest) {
		t.Fatalf("accepting a withdrawn request: %v, want ErrNoRequest", err)
	}
	if len(a.agent.Connections()) != n || len(a.requests()) != 0 {
		t.Errorf("left: %d connections (was %d), %d requests", len(a.agent.Connections()), n, len(a.requests()))
	}
}

// TestAddressRepeats: the same request delivered again, while it waits
// and after it is answered, is acknowledged and ignored.
func TestAddressRepeats(t *testing.T) {
	ra := relaytest.Start(t)
	a, b := newAddrPeer(t), newAddrPeer(t)
	addr := a.createAddress(ra)
	rcv := a.addressRcv()
	body := craft(t, b.agent, addr, "bob")
	for i := range 3 {
		if !a.agent.HandleMessage(rcv, wire.Message{Body: body, Time: time.Now()}) {
			t.Fatalf("delivery %d not acknowledged", i)
		}
	}
	rs := a.requests()
	if len(rs) != 1 || len(a.aev.requests) != 1 {
		t.Fatalf("%d requests, %d events after three deliveries", len(rs), len(a.aev.requests))
	}
	// A replay through the relay, by anyone with the link.
	cl, err := client.Dial(ctxT(t), ra.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Send(ctxT(t), addr.SenderID, senderKey(addr), body); err != nil {
		t.Fatal(err)
	}
	marker := craft(t, b.agent, addr, "marker")
	if err := cl.Send(ctxT(t), addr.SenderID, senderKey(addr), marker); err != nil {
		t.Fatal(err)
	}
	a.wait("the marker", func() bool { return len(a.aev.requests) == 2 })
	if err := a.agent.RejectRequest(rs[0].ID); err != nil {
		t.Fatal(err)
	}
	if !a.agent.HandleMessage(rcv, wire.Message{Body: body}) {
		t.Fatal("a repeat of a rejected request not acknowledged")
	}
	if rs := a.requests(); len(rs) != 1 || string(rs[0].Info) != "marker" || len(a.aev.requests) != 2 {
		t.Errorf("after a repeat of a rejected request: %d requests, %d events", len(rs), len(a.aev.requests))
	}
	if a.problems() != 0 {
		t.Errorf("repeats reported: %v", a.ev.problems)
	}
}

// TestAddressRequestCap: the request past MaxRequests drops the oldest,
// which is reported, and a repeat of the dropped one is ignored.
func TestAddressRequestCap(t *testing.T) {
	ra := relaytest.Start(t)
	a, b := newAddrPeer(t), newAddrPeer(t)
	addr := a.createAddress(ra)
	rcv := a.addressRcv()
	bodies := make([][]byte, MaxRequests+1)
	for i := range bodies {
		bodies[i] = craft(t, b.agent, addr, fmt.Sprintf("requester %d", i))
		if !a.agent.HandleMessage(rcv, wire.Message{Body: bodies[i]}) {
			t.Fatalf("request %d not acknowledged", i)
		}
		if i == MaxRequests-1 && (len(a.requests()) != MaxRequests || len(a.aev.dropped) != 0) {
			t.Fatalf("at the cap: %d requests, %d dropped", len(a.requests()), len(a.aev.dropped))
		}
	}
	rs := a.requests()
	if len(rs) != MaxRequests || string(rs[0].Info) != "requester 1" || string(rs[MaxRequests-1].Info) != fmt.Sprintf("requester %d", MaxRequests) {
		t.Fatalf("%d requests, from %q to %q", len(rs), rs[0].Info, rs[len(rs)-1].Info)
	}
	if len(a.aev.dropped) != 1 || string(a.aev.dropped[0].Info) != "requester 0" {
		t.Fatalf("dropped: %+v", a.aev.dropped)
	}
	a.agent.HandleMessage(rcv, wire.Message{Body: bodies[0]})
	if len(a.requests()) != MaxRequests || len(a.aev.requests) != MaxRequests+1 {
		t.Error("a repeat of the dropped request came back")
	}
}

// TestAddressSeenLimit: the last MaxSeenRequests answered requests are
// remembered; a repeat of one older than that shows again.
func TestAddressSeenLimit(t *testing.T) {
	ra := relaytest.Start(t)
	a, b := newAddrPeer(t), newAddrPeer(t)
	addr := a.createAddress(ra)
	rcv := a.addressRcv()
	bodies := make([][]byte, MaxSeenRequests+1)
	for i := range bodies {
		bodies[i] = craft(t, b.agent, addr, fmt.Sprint(i))
		a.agent.HandleMessage(rcv, wire.Message{Body: bodies[i]})
		rs := a.requests()
		if len(rs) != 1 {
			t.Fatalf("request %d: %d waiting", i, len(rs))
		}
		if err := a.agent.RejectRequest(rs[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	a.agent.HandleMessage(rcv, wire.Message{Body: bodies[1]}) // among the last MaxSeenRequests
	if n := len(a.requests()); n != 0 {
		t.Fatalf("a remembered request showed again (%d waiting)", n)
	}
	a.agent.HandleMessage(rcv, wire.Message{Body: bodies[0]}) // forgotten
	if rs := a.requests(); len(rs) != 1 || string(rs[0].Info) != "0" {
		t.Errorf("the forgotten request: %d waiting", len(rs))
	}
}

// TestAddressDeleted: deleting the address keeps the contacts made with
// it, and a request with the old link fails clearly and leaves nothing.
func TestAddressDeleted(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b, c := newAddrPeer(t), newAddrPeer(t), newAddrPeer(t)
	addr := a.createAddress(ra)
	cb, req := askAddress(t, a, b, addr, rb, "bob")
	ca, err := a.agent.AcceptRequest(ctxT(t), req.ID, ra.Addr(), []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	b.wait("b connected", func() bool { return b.ev.connected[cb] != nil })
	askAddress(t, a, c, addr, rb, "carol") // still waiting when the address goes
	if err := a.agent.DeleteAddress(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.agent.Address(); !errors.Is(err, ErrNoAddress) {
		t.Errorf("Address after delete: %v", err)
	}
	if rs := a.requests(); len(rs) != 0 {
		t.Errorf("%d requests after delete", len(rs))
	}
	if err := a.agent.DeleteAddress(ctxT(t)); !errors.Is(err, ErrNoAddress) {
		t.Errorf("deleting twice: %v", err)
	}
	if err := a.agent.SetAddressEnabled(false); !errors.Is(err, ErrNoAddress) {
		t.Errorf("turning off a deleted address: %v", err)
	}
	exchange(t, a, b, ca, cb)
	n := len(c.agent.Connections())
	if _, err := c.agent.RequestContact(ctxT(t), addr, rb.Addr(), []byte("carol")); !errors.Is(err, ErrAddressGone) {
		t.Fatalf("a request to a deleted address: %v, want ErrAddressGone", err)
	}
	if len(c.agent.Connections()) != n {
		t.Error("the failed request left a connection")
	}
	// A new address works.
	addr2 := a.createAddress(ra)
	if addr2.SenderID == addr.SenderID || addr2.Key == addr.Key {
		t.Error("the new address reuses the old one's queue or key")
	}
	askAddress(t, a, c, addr2, rb, "carol")
}

// TestAddressReplace: the old link stops working, the new one works,
// waiting requests stay.
func TestAddressReplace(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newAddrPeer(t), newAddrPeer(t)
	old := a.createAddress(ra)
	_, req := askAddress(t, a, b, old, rb, "bob")
	info, err := a.agent.ReplaceAddress(ctxT(t), ra.Addr(), Tag{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Address.SenderID == old.SenderID {
		t.Fatal("the replacement is the old address")
	}
	if rs := a.requests(); len(rs) != 1 || rs[0].ID != req.ID {
		t.Errorf("waiting requests after replacing: %+v", rs)
	}
	if _, err := b.agent.RequestContact(ctxT(t), old, rb.Addr(), nil); !errors.Is(err, ErrAddressGone) {
		t.Errorf("the old link: %v", err)
	}
	askAddress(t, a, b, info.Address, rb, "bob, new link")
	// Both the replacement and the restart subscribe the new queue.
	a.stop()
	a.start()
	askAddress(t, a, b, info.Address, rb, "bob after a restart")
}

// TestAddressOff: off, requests are dropped unseen and nobody is told
// (the requester's SEND succeeds); on again, the same link works.
func TestAddressOff(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b, c := newAddrPeer(t), newAddrPeer(t), newAddrPeer(t)
	addr := a.createAddress(ra)
	if err := a.agent.SetAddressEnabled(false); err != nil {
		t.Fatal(err)
	}
	if info, err := a.agent.Address(); err != nil || info.Enabled {
		t.Fatalf("after turning off: %+v, %v", info, err)
	}
	rcv := a.addressRcv()
	if !a.agent.HandleMessage(rcv, wire.Message{Body: craft(t, b.agent, addr, "crafted")}) {
		t.Error("a request to an address that is off was not acknowledged")
	}
	if _, err := b.agent.RequestContact(ctxT(t), addr, rb.Addr(), []byte("bob")); err != nil {
		t.Fatalf("a request to an address that is off: %v", err)
	}
	a.waitAddressQueueEmpty()
	if err := a.agent.SetAddressEnabled(true); err != nil {
		t.Fatal(err)
	}
	_, req := askAddress(t, a, c, addr, rb, "carol")
	if rs := a.requests(); len(rs) != 1 || string(rs[0].Info) != "carol" || string(req.Info) != "carol" {
		t.Errorf("requests: %+v", rs)
	}
	a.ev.mu.Lock()
	defer a.ev.mu.Unlock()
	if len(a.aev.requests) != 1 || len(a.ev.problems) != 0 {
		t.Errorf("%d requests shown (want Carol's only), problems %v", len(a.aev.requests), a.ev.problems)
	}
}

// waitAddressQueueEmpty waits until the relay holds no message for p's
// address: every one delivered was handled and acknowledged. It looks
// with GET from a session of its own, which the relay allows beside the
// subscriber's.
func (p *addrPeer) waitAddressQueueEmpty() {
	p.t.Helper()
	r, err := p.agent.loadAddress()
	if err != nil {
		p.t.Fatal(err)
	}
	relay, sub, err := r.Queue.subscription()
	if err != nil {
		p.t.Fatal(err)
	}
	cl, err := client.Dial(ctxT(p.t), relay, client.Options{})
	if err != nil {
		p.t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(scaled(30 * time.Second))
	for {
		_, ok, err := cl.Get(ctxT(p.t), sub)
		if err == nil && !ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the address queue is not empty: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAddressBadRequests: tampered, truncated, oversized and malformed
// bodies are reported, acknowledged, and change nothing; a genuine
// request still works after them.
func TestAddressBadRequests(t *testing.T) {
	ra := relaytest.Start(t)
	a, b := newAddrPeer(t), newAddrPeer(t)
	addr := a.createAddress(ra)
	rcv := a.addressRcv()
	stateBefore, err := a.agent.store.Get(addrStateKey)
	if err != nil {
		t.Fatal(err)
	}
	good := craft(t, b.agent, addr, "bob")
	seal := func(r request) []byte {
		pt, err := r.encode()
		if err != nil {
			t.Fatal(err)
		}
		body, err := sealRequest(b.agent.rand, addr.Key, pt)
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
	invPayload, _ := testInvitation("127.0.0.1").Payload()
	inv, _ := base64.RawURLEncoding.DecodeString(invPayload)
	badInv := bytes.Clone(inv)
	badInv[len(badInv)-1] ^= 1 // checksum
	plain, _ := request{Version: 1, Invitation: inv}.encode()
	cases := map[string][]byte{
		"empty":               nil,
		"truncated":           good[:100],
		"one byte short":      good[:len(good)-1],
		"oversized":           append(bytes.Clone(good), 0),
		"low-order key":       append(make([]byte, KeySize), good[KeySize:]...),
		"wrong version":       seal(request{Version: 9, Invitation: inv}),
		"another tag":         seal(request{Version: 1, Invitation: inv, Tag: groupTag}),
		"corrupted invite":    seal(request{Version: 1, Invitation: badInv}),
		"unsealed plaintext":  append(bytes.Clone(good[:KeySize]), append(plain, make([]byte, wire.MaxBodySize-KeySize-len(plain))...)...),
		"wrong type in a box": mustSeal(t, b.agent, addr, append([]byte{'M'}, plain[1:]...)),
	}
	for _, bit := range []int{0, 8*KeySize + 3, 8 * 100, 8*len(good) - 1, 8 * 9000} {
		tampered := bytes.Clone(good)
		tampered[bit/8] ^= 1 << (bit % 8)
		cases[fmt.Sprintf("bit %d flipped", bit)] = tampered
	}
	for name, body := range cases {
		before := a.problems()
		if !a.agent.HandleMessage(rcv, wire.Message{Body: body}) {
			t.Errorf("%s: not acknowledged", name)
		}
		if a.problems() != before+1 {
			t.Errorf("%s: %d problems reported, want 1", name, a.problems()-before)
		}
	}
	if rs := a.requests(); len(rs) != 0 || len(a.aev.requests) != 0 {
		t.Fatalf("bad bodies made %d requests", len(rs))
	}
	stateAfter, _ := a.agent.store.Get(addrStateKey)
	if !bytes.Equal(stateBefore, stateAfter) {
		t.Error("bad bodies changed the address record")
	}
	// The quota marker is acknowledged without a word.
	before := a.problems()
	if !a.agent.HandleMessage(rcv, wire.Message{Quota: true}) || a.problems() != before {
		t.Error("the quota marker was not taken silently")
	}
	if !a.agent.HandleMessage(rcv, wire.Message{Body: good}) {
		t.Fatal("the genuine request was not acknowledged")
	}
	if rs := a.requests(); len(rs) != 1 || string(rs[0].Info) != "bob" {
		t.Errorf("the genuine request after bad ones: %+v", rs)
	}
}

// TestAddressLocalRelayInRequest: an owner whose page may not use private
// relays drops a request whose invitation names one, without showing it.
func TestAddressLocalRelayInRequest(t *testing.T) {
	ra := relaytest.Start(t)
	a, b := newAddrPeer(t), newAddrPeer(t)
	addr := a.createAddress(ra)
	rcv := a.addressRcv()
	body := craft(t, b.agent, addr, "bob") // its invitation is on 127.0.0.1
	a.relays.allowLocal.Store(false)
	defer a.relays.allowLocal.Store(true)
	if !a.agent.HandleMessage(rcv, wire.Message{Body: body}) || a.problems() != 1 || len(a.requests()) != 0 {
		t.Errorf("a request naming a private relay: %d problems, %d requests", a.problems(), len(a.requests()))
	}
}

// TestAddressInfoLimit: a request carries info up to MaxBody; one byte
// more is refused before anything is created.
func TestAddressInfoLimit(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newAddrPeer(t), newAddrPeer(t)
	addr := a.createAddress(ra)
	n := len(b.agent.Connections())
	if _, err := b.agent.RequestContact(ctxT(t), addr, rb.Addr(), make([]byte, MaxBody+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("info of MaxBody+1: %v", err)
	}
	if len(b.agent.Connections()) != n {
		t.Error("a refused request left a connection")
	}
	big := bytes.Repeat([]byte{'i'}, MaxBody)
	_, req := askAddress(t, a, b, addr, rb, string(big))
	if !bytes.Equal(req.Info, big) {
		t.Errorf("info of MaxBody arrived as %d bytes", len(req.Info))
	}
}

// TestAddressCreateFailure: an address on an unreachable relay fails and
// stores nothing.
func TestAddressCreateFailure(t *testing.T) {
	ra := relaytest.Start(t)
	a := newAddrPeer(t)
	ra.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := a.agent.CreateAddress(ctx, ra.Addr(), Tag{}); err == nil {
		t.Fatal("created an address on a stopped relay")
	}
	if _, err := a.agent.Address(); !errors.Is(err, ErrNoAddress) {
		t.Errorf("after a failed create: %v", err)
	}
	if _, err := a.agent.CreateAddress(ctxT(t), ra.Addr(), Tag{Type: 'Z'}); !errors.Is(err, ErrAddressVersion) {
		t.Errorf("an unknown tag: %v", err)
	}
}

// TestAddressStoredBeforeAck: a request whose storing fails is not
// acknowledged, so after a crash the relay delivers it again, and it is
// then shown once.
func TestAddressStoredBeforeAck(t *testing.T) {
	ra, rb := relaytest.Start(t), relaytest.Start(t)
	a, b := newAddrPeer(t), newAddrPeer(t)
	a.stop()
	cfs, err := crashfs.New()
	if err != nil {
		t.Fatal(err)
	}
	a.fs = cfs
	a.start()
	addr := a.createAddress(ra)
	cfs.SetBudget(0) // every write fails from now on
	if _, err := b.agent.RequestContact(ctxT(t), addr, rb.Addr(), []byte("bob")); err != nil {
		t.Fatal(err)
	}
	a.wait("the failed write reported", func() bool { return len(a.ev.problems) > 0 })
	if n := len(a.requests()); n != 0 {
		t.Fatalf("%d requests while writes fail", n)
	}
	// The process dies before it could store and acknowledge; started
	// again, its new session gets the request again.
	a.stop()
	cfs.SetBudget(-1)
	a.start()
	a.wait("the request delivered again", func() bool { return len(a.aev.requests) == 1 })
	if rs := a.requests(); len(rs) != 1 || string(rs[0].Info) != "bob" {
		t.Errorf("requests: %+v", rs)
	}
}

func senderKey(c ContactAddress) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(c.SenderSeed[:]) }

func mustSeal(t testing.TB, from *Agent, addr ContactAddress, pt []byte) []byte {
	t.Helper()
	body, err := sealRequest(from.rand, addr.Key, pt)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
