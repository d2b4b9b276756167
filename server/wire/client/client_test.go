package client

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
)

// TestSubscriptionBoxKey: the recipient derives the same box key as the
// relay, so it opens what the relay seals (runs natively and in the browser).
func TestSubscriptionBoxKey(t *testing.T) {
	keys, err := NewRecipientKeys()
	if err != nil {
		t.Fatal(err)
	}
	relayDH, _ := ecdh.X25519().GenerateKey(rand.Reader)
	info := QueueInfo{RelayDH: [32]byte(relayDH.PublicKey().Bytes())}
	sub := info.Subscription(keys)
	relayKey := wire.BoxKey((*[32]byte)(keys.DH.PublicKey().Bytes()), (*[32]byte)(relayDH.Bytes()))
	var id wire.MsgID
	_, _ = rand.Read(id[:])
	sealed := wire.SealMessage(relayKey, id, time.Unix(5, 0), false, []byte("hi"))
	m, err := wire.OpenMessage(sub.BoxKey, id, sealed)
	if err != nil || string(m.Body) != "hi" {
		t.Fatalf("%q %v", m.Body, err)
	}
	other, _ := NewRecipientKeys()
	if _, err := wire.OpenMessage(info.Subscription(other).BoxKey, id, sealed); !errors.Is(err, wire.ErrDecrypt) {
		t.Fatal("another recipient opened the message")
	}
}

// TestDialUnreachable: a relay that is not there is a clear error, not a
// hang (in the browser this goes through the JS WebSocket).
func TestDialUnreachable(t *testing.T) {
	kh := wire.HashIdentity(make([]byte, 32))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, wire.Address{KeyHash: kh, Host: "127.0.0.1", Port: 1}, Options{DialTimeout: 5 * time.Second})
	if err == nil {
		t.Fatal("dialed a closed port")
	}
	if ctx.Err() != nil {
		t.Fatal("dial took until the deadline")
	}
}

func TestOptionsDefaults(t *testing.T) {
	var o Options
	o.defaults()
	if o.MinBackoff != 250*time.Millisecond || o.MaxBackoff != 30*time.Second || o.PingInterval != 20*time.Second ||
		o.PingTimeout != 15*time.Second || o.DialTimeout != 15*time.Second || o.EventBuffer != 256 {
		t.Fatalf("%+v", o)
	}
	o = Options{MinBackoff: time.Second, EventBuffer: 3}
	o.defaults()
	if o.MinBackoff != time.Second || o.EventBuffer != 3 {
		t.Fatal("defaults overrode a set option")
	}
}
