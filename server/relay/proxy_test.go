package relay_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/wisp-chat/wisp/server/relay"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// allowLoopbackProxy lets a test relay's proxy reach relays on loopback.
func allowLoopbackProxy(cfg *relay.Config) { cfg.Proxy.AllowPrivate = true }

// TestProxySendAndReceive: a client sends through its own relay to a
// queue on another relay; the recipient gets it there.
func TestProxySendAndReceive(t *testing.T) {
	proxyRelay := startRelay(t, allowLoopbackProxy)
	dest := startRelay(t, nil)
	rcv := dial(t, dest)
	q := newQueue(t, rcv, false)
	if errs := rcv.Subscribe(ctxT(t), q.sub); errs[0] != nil {
		t.Fatal(errs[0])
	}
	snd := dial(t, proxyRelay)
	ctx := ctxT(t)
	// Not a client of the proxy yet: no queue there.
	err := snd.ProxySecure(ctx, dest.addr, q.info.SndID, q.sndKey)
	var re *client.RouteError
	if !errors.As(err, &re) || re.AtDest || !errors.Is(err, client.ErrRoute) {
		t.Fatalf("proxy without a queue there: %v", err)
	}
	newQueue(t, snd, false)
	if err := snd.ProxySecure(ctx, dest.addr, q.info.SndID, q.sndKey); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		body := bytes.Repeat([]byte{byte(i)}, 100+i)
		if err := snd.ProxySend(ctx, dest.addr, q.info.SndID, q.sndKey, body); err != nil {
			t.Fatal(err)
		}
		ev := nextEvent(t, rcv, client.EventMessage)
		if ev.Err != nil || !bytes.Equal(ev.Message.Body, body) {
			t.Fatalf("message %d: %v %x", i, ev.Err, ev.Message.Body)
		}
		if err := rcv.Ack(ctx, q.sub, ev.Message.ID); err != nil {
			t.Fatal(err)
		}
	}
	// A wrong sender key: the destination's AUTH, named as such.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	err = snd.ProxySend(ctx, dest.addr, q.info.SndID, other, []byte("x"))
	if !errors.As(err, &re) || !re.AtDest || !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("wrong key through the proxy: %v", err)
	}
}
