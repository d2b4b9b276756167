package routes

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
)

// TestAdmitCap: a forward key takes MaxForwardsPerKey commands, then
// ROUTE; a repeated ephemeral key is PROHIBITED before and after.
func TestAdmitCap(t *testing.T) {
	var proxyEph [wire.KeySize]byte
	proxyEph[0] = 9 // the X25519 base point: a valid key
	d, err := NewDestination(proxyEph)
	if err != nil {
		t.Fatal(err)
	}
	if d.max != MaxForwardsPerKey {
		t.Fatalf("cap %d, want %d", d.max, MaxForwardsPerKey)
	}
	d.max = 3
	keys := make([][wire.KeySize]byte, 4)
	for i := range keys {
		_, _ = rand.Read(keys[i][:])
	}
	for i := range 3 {
		if code := d.Admit(keys[i]); code != 0 {
			t.Fatalf("command %d: %v", i, code)
		}
	}
	if code := d.Admit(keys[0]); code != wire.CodeProhibited {
		t.Fatalf("a repeat: %v, want PROHIBITED", code)
	}
	if code := d.Admit(keys[3]); code != wire.CodeRoute {
		t.Fatalf("past the cap: %v, want ROUTE", code)
	}
}

// session is a Session that counts its closes.
type session struct{ closed *atomic.Int32 }

func (s session) Relay(context.Context, wire.ChunkClass, []byte) ([]byte, error) {
	return nil, wire.CodeRoute
}
func (s session) Close() error { s.closed.Add(1); return nil }

// TestSweepIdle: a route unused for Config.Idle is closed by Sweep, a
// recent one is kept, and Close closes the rest exactly once.
func TestSweepIdle(t *testing.T) {
	var closed atomic.Int32
	open := func(context.Context, wire.Address, func()) (Session, Key, *[32]byte, error) {
		return session{&closed}, Key{}, new([32]byte), nil
	}
	tb := New(context.Background(), Config{MaxRoutes: 10, Idle: time.Minute, Timeout: time.Second}, open)
	ctx := context.Background()
	a, err := tb.Open(ctx, wire.Address{Host: "a.example", Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tb.Open(ctx, wire.Address{Host: "b.example", Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	a.last.Store(time.Now().Add(-2 * time.Minute).UnixNano())
	tb.Sweep(time.Now())
	if tb.Lookup(a.ID[:]) != nil || tb.Lookup(b.ID[:]) != b || tb.Len() != 1 {
		t.Fatalf("after the sweep: a %v, b %v, %d routes", tb.Lookup(a.ID[:]), tb.Lookup(b.ID[:]), tb.Len())
	}
	tb.Close()
	if n := closed.Load(); n != 2 {
		t.Fatalf("%d sessions closed, want 2", n)
	}
}
