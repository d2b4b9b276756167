//go:build !js

package agent

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// TestRelaysRefuseLocal: a pool that may not use local relays never dials
// one, whatever spelling its address uses; one that may, dials it.
func TestRelaysRefuseLocal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)

	r := NewRelays(client.Options{}, nil, nil)
	defer r.Close()
	// The refusals come at once; the deadline only bounds a failure.
	ctx, cancel := context.WithTimeout(context.Background(), scaled(5*time.Second))
	defer cancel()
	for _, host := range []string{"127.0.0.1", "127.1", "2130706433", "localhost", "LOCALHOST.", "::ffff:127.0.0.1", "0.0.0.0"} {
		addr := wire.Address{Host: host, Port: port}
		if _, err := r.get(ctx, addr); !errors.Is(err, ErrLocalRelay) {
			t.Errorf("get(%s): %v, want ErrLocalRelay", host, err)
		}
		if err := r.secure(ctx, addr, wire.QueueID{1}, nil); !errors.Is(err, ErrLocalRelay) {
			t.Errorf("secure(%s): %v, want ErrLocalRelay", host, err)
		}
		if err := r.subscribe(ctx, addr, client.Subscription{RcvID: wire.QueueID{1}}); !errors.Is(err, ErrLocalRelay) {
			t.Errorf("subscribe(%s): %v, want ErrLocalRelay", host, err)
		}
	}
	r.mu.Lock()
	n := len(r.relays)
	r.mu.Unlock()
	if n != 0 {
		t.Errorf("the pool holds %d relays it may not use", n)
	}
	select {
	case <-accepted:
		t.Error("a refused relay was dialled")
	default:
	}

	// Allowed (a page on this machine): the same address is dialled.
	dev := NewRelays(client.Options{}, nil, nil)
	defer dev.Close()
	dev.AllowLocalRelays()
	dev.conn(wire.Address{Host: "127.0.0.1", Port: port})
	select {
	case <-accepted:
	case <-time.After(scaled(30 * time.Second)):
		t.Fatal("an allowed local relay was not dialled")
	}
}

// TestJoinRefusesLocalRelay: an agent that may not use local relays refuses
// an invitation naming one before it creates anything, and refuses a
// confirmation whose reply queue is on one.
func TestJoinRefusesLocalRelay(t *testing.T) {
	relay := relaytest.Start(t)
	a, b := newPeer(t), newPeer(t)
	_, inv, err := a.agent.CreateInvitation(ctxT(t), relay.Addr(), []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}

	b.relays.allowLocal.Store(false)
	if _, err := b.agent.Join(ctxT(t), inv, relay.Addr(), []byte("bob")); !errors.Is(err, ErrLocalRelay) {
		t.Fatalf("Join: %v, want ErrLocalRelay", err)
	}
	if ids := b.agent.Connections(); len(ids) != 0 {
		t.Errorf("the refused join left %d connections", len(ids))
	}
	b.relays.mu.Lock()
	n := len(b.relays.relays)
	b.relays.mu.Unlock()
	if n != 0 {
		t.Errorf("the refused join reached %d relays", n)
	}

	// The invitation is untouched: a joiner that may use it does. The
	// inviter, now refusing local relays, refuses its reply queue.
	a.relays.allowLocal.Store(false)
	b.relays.allowLocal.Store(true)
	cb, err := b.agent.Join(ctxT(t), inv, relay.Addr(), []byte("bob"))
	if err != nil {
		t.Fatalf("Join by an allowed joiner: %v", err)
	}
	a.ev.wait(t, "the inviter's refusal", 30*time.Second, func() bool {
		for _, p := range a.ev.problems {
			if errors.Is(p, ErrLocalRelay) {
				return true
			}
		}
		return false
	})
	a.ev.mu.Lock()
	connecting := len(a.ev.connecting)
	a.ev.mu.Unlock()
	if connecting != 0 {
		t.Error("the inviter accepted a reply queue on a relay it may not use")
	}
	b.ev.mu.Lock()
	joined := b.ev.connected[cb] != nil
	b.ev.mu.Unlock()
	if joined {
		t.Error("the joiner is connected")
	}
}
