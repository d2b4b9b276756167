package handshake

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/wire"
)

// peer plays the client: it hands the relay side its messages in turn
// and records what the relay wrote and how it closed.
type peer struct {
	in     [][]byte
	out    [][]byte
	code   websocket.StatusCode
	reason string
	failW  bool
}

func (p *peer) relay(id ed25519.PrivateKey) Relay {
	return Relay{
		Identity: id,
		Read: func(context.Context) ([]byte, bool) {
			if len(p.in) == 0 {
				return nil, false
			}
			b := p.in[0]
			p.in = p.in[1:]
			return b, true
		},
		Write: func(_ context.Context, b []byte) error {
			if p.failW {
				return errors.New("broken pipe")
			}
			p.out = append(p.out, b)
			return nil
		},
		Close: func(code websocket.StatusCode, reason string) { p.code, p.reason = code, reason },
	}
}

func TestRun(t *testing.T) {
	pub, id, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client, hello, err := wire.NewClientHandshake(wire.HashIdentity(pub))
	if err != nil {
		t.Fatal(err)
	}

	// The whole handshake: both sides end with the same session.
	p := &peer{in: [][]byte{hello}}
	r := p.relay(id)
	read := r.Read
	var clientSess *wire.Session
	r.Read = func(ctx context.Context) ([]byte, bool) {
		if len(p.in) == 0 && len(p.out) == 1 { // the relay hello is out: confirm it
			var confirm []byte
			if clientSess, confirm, err = client.Finish(p.out[0], wire.SupportedVersions()); err != nil {
				t.Fatal(err)
			}
			p.in = append(p.in, confirm)
		}
		return read(ctx)
	}
	sess, ok := r.Run(ctx)
	if !ok || p.reason != "" || clientSess == nil || sess.ID != clientSess.ID {
		t.Fatalf("handshake: %v, closed %q", ok, p.reason)
	}

	_, hello2, _ := wire.NewClientHandshake(wire.HashIdentity(pub))
	for _, tc := range []struct {
		name   string
		in     [][]byte
		failW  bool
		code   websocket.StatusCode
		reason string
	}{
		{"nothing read", nil, false, 0, ""},
		{"garbage hello", [][]byte{make([]byte, wire.BlockSize)}, false, websocket.StatusPolicyViolation, "bad client hello"},
		{"empty hello", [][]byte{{}}, false, websocket.StatusPolicyViolation, "bad client hello"},
		{"write fails", [][]byte{hello2}, true, websocket.StatusInternalError, "write failed"},
		{"no confirmation", [][]byte{hello2}, false, 0, ""},
		{"short confirmation", [][]byte{hello2, make([]byte, wire.BlockSize-1)}, false, websocket.StatusPolicyViolation, "bad handshake confirmation"},
		{"forged confirmation", [][]byte{hello2, make([]byte, wire.BlockSize)}, false, websocket.StatusPolicyViolation, "bad handshake confirmation"},
	} {
		p := &peer{in: tc.in, failW: tc.failW}
		sess, ok := p.relay(id).Run(ctx)
		if ok || sess != nil || p.code != tc.code || p.reason != tc.reason {
			t.Errorf("%s: ok %v, closed %d %q; want %d %q", tc.name, ok, p.code, p.reason, tc.code, tc.reason)
		}
	}
}
