package relay_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wisp-chat/wisp/server/relay"
	"github.com/wisp-chat/wisp/server/wire"
)

// stillServing checks that the relay still serves a fresh connection.
func stillServing(t *testing.T, r *testRelay) {
	t.Helper()
	c := dial(t, r)
	newQueue(t, c, true)
	if err := c.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestConnectionLevelViolations(t *testing.T) {
	r := startRelay(t, nil)
	cases := []struct {
		name   string
		do     func(c *rawConn)
		reason string
	}{
		{"short block", func(c *rawConn) {
			_ = c.ws.Write(ctxT(t), websocket.MessageBinary, make([]byte, wire.BlockSize-1))
		}, "block size must be 16384"},
		{"empty block", func(c *rawConn) {
			_ = c.ws.Write(ctxT(t), websocket.MessageBinary, nil)
		}, "block size must be 16384"},
		{"text frame", func(c *rawConn) {
			_ = c.ws.Write(ctxT(t), websocket.MessageText, make([]byte, wire.BlockSize))
		}, "binary blocks only"},
		{"garbage block", func(c *rawConn) {
			b := make([]byte, wire.BlockSize)
			_, _ = rand.Read(b)
			_ = c.ws.Write(ctxT(t), websocket.MessageBinary, b)
		}, "block authentication failed"},
		{"bit-flipped block", func(c *rawConn) {
			var bb wire.BlockBuilder
			bb.Add(c.tx(nil, wire.Command{Kind: wire.CmdPING}, nil))
			block, _ := c.sess.Seal(bb.Payload())
			block[100] ^= 1
			_ = c.ws.Write(ctxT(t), websocket.MessageBinary, block)
		}, "block authentication failed"},
		{"zero transmissions", func(c *rawConn) {
			c.sendPayload(make([]byte, wire.BlockPayloadSize))
		}, "malformed block"},
		{"length past end", func(c *rawConn) {
			p := make([]byte, wire.BlockPayloadSize)
			p[0] = 1
			binary.BigEndian.PutUint16(p[1:], wire.BlockPayloadSize)
			c.sendPayload(p)
		}, "malformed block"},
		{"count larger than content", func(c *rawConn) {
			var bb wire.BlockBuilder
			bb.Add(c.tx(nil, wire.Command{Kind: wire.CmdPING}, nil))
			p := append([]byte(nil), bb.Payload()...)
			p[0] = 2
			c.sendPayload(p)
		}, "malformed block"},
		{"garbage padding", func(c *rawConn) {
			var bb wire.BlockBuilder
			bb.Add(c.tx(nil, wire.Command{Kind: wire.CmdPING}, nil))
			p := append([]byte(nil), bb.Payload()...)
			p[len(p)-1] = 7
			c.sendPayload(p)
		}, "malformed block"},
	}
	t.Run("long block", func(t *testing.T) {
		c := dialRaw(t, r)
		_ = c.ws.Write(ctxT(t), websocket.MessageBinary, make([]byte, wire.BlockSize+1))
		code, reason := c.closeReason()
		if code != websocket.StatusMessageTooBig && reason != "block size must be 16384" {
			t.Fatalf("closed with %v %q", code, reason)
		}
		stillServing(t, r)
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, r)
			tc.do(c)
			code, reason := c.closeReason()
			if reason != tc.reason || code == websocket.StatusNormalClosure {
				t.Fatalf("closed with %v %q, want %q", code, reason, tc.reason)
			}
			stillServing(t, r)
		})
	}
}

func TestHandshakeViolations(t *testing.T) {
	r := startRelay(t, nil)
	ctx := ctxT(t)
	dialWS := func() *websocket.Conn {
		ws, _, err := websocket.Dial(ctx, r.addr.WebSocketURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.CloseNow() })
		return ws
	}
	// A hello with the wrong magic.
	ws := dialWS()
	_ = ws.Write(ctx, websocket.MessageBinary, make([]byte, wire.BlockSize))
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("zero hello: %v", err)
	}
	// A confirmation that does not decrypt.
	ws = dialWS()
	_, hello, _ := wire.NewClientHandshake(r.addr.KeyHash)
	_ = ws.Write(ctx, websocket.MessageBinary, hello)
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatal(err)
	}
	_ = ws.Write(ctx, websocket.MessageBinary, make([]byte, wire.BlockSize))
	_, _, err := ws.Read(ctx)
	if ce := new(websocket.CloseError); !asClose(err, ce) || ce.Reason != "bad handshake confirmation" {
		t.Fatalf("bad confirmation: %v", err)
	}
	// A client expecting another relay identity refuses this one.
	hs, hello, _ := wire.NewClientHandshake(wire.KeyHash{1})
	ws = dialWS()
	_ = ws.Write(ctx, websocket.MessageBinary, hello)
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := hs.Finish(b, wire.SupportedVersions()); err != wire.ErrIdentity {
		t.Fatalf("identity mismatch: %v", err)
	}
	stillServing(t, r)
}

func asClose(err error, ce *websocket.CloseError) bool {
	e, ok := err.(interface{ Unwrap() error })
	for err != nil {
		if c, is := err.(websocket.CloseError); is {
			*ce = c
			return true
		}
		if !ok {
			return false
		}
		err = e.Unwrap()
		e, ok = err.(interface{ Unwrap() error })
	}
	return false
}

func TestTransmissionErrors(t *testing.T) {
	r := startRelay(t, nil)
	setup := dial(t, r)
	q := newQueue(t, setup, true)
	c := dialRaw(t, r)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	rcv, snd := q.info.RcvID[:], q.info.SndID[:]
	big := make([]byte, wire.MaxBodySize+1)

	cases := []struct {
		name string
		raw  func() []byte
		code wire.ErrCode
	}{
		{"unknown command", func() []byte { return append([]byte{0, 1, 'x', 0}, "HELO"...) }, wire.CodeCmd},
		{"relay answer sent by a client", func() []byte { return c.tx(rcv, wire.Command{Kind: wire.AnsOK}, q.keys.Auth) }, wire.CodeCmd},
		{"PING with arguments", func() []byte { return append([]byte{0, 1, 'x', 0}, "PING x"...) }, wire.CodeCmd},
		{"SUB without entity", func() []byte { return c.tx(nil, wire.Command{Kind: wire.CmdSUB}, q.keys.Auth) }, wire.CodeCmd},
		{"SUB without signature", func() []byte { return c.tx(rcv, wire.Command{Kind: wire.CmdSUB}, nil) }, wire.CodeCmd},
		{"NEW with entity", func() []byte { return c.tx(rcv, wire.Command{Kind: wire.CmdNEW}, q.keys.Auth) }, wire.CodeCmd},
		{"empty correlation ID", func() []byte {
			t := wire.Transmission{Command: wire.Command{Kind: wire.CmdPING}}
			b, _ := t.Marshal()
			return b
		}, wire.CodeCmd},
		{"truncated ACK", func() []byte {
			b := c.tx(rcv, wire.Command{Kind: wire.CmdACK}, q.keys.Auth)
			return b[:len(b)-1]
		}, wire.CodeCmd},
		{"truncated entity", func() []byte { return []byte{0, 1, 'x', 24, 1, 2, 3} }, wire.CodeBlock},
		{"bad signature length", func() []byte { return append([]byte{10}, make([]byte, 20)...) }, wire.CodeBlock},
		{"oversized body", func() []byte {
			raw := append([]byte{0, 1, 'x', 24}, snd...)
			return append(append(raw, "SEND "...), big...)
		}, wire.CodeLarge},
		{"wrong recipient key", func() []byte { return c.tx(rcv, wire.Command{Kind: wire.CmdSUB}, stranger) }, wire.CodeAuth},
		{"wrong sender key", func() []byte { return c.tx(snd, wire.Command{Kind: wire.CmdSEND, Body: []byte("x")}, stranger) }, wire.CodeAuth},
		{"recipient key on sender ID", func() []byte { return c.tx(snd, wire.Command{Kind: wire.CmdSUB}, q.keys.Auth) }, wire.CodeAuth},
		{"NEW signed by another key", func() []byte {
			cmd := wire.Command{Kind: wire.CmdNEW}
			cmd.AuthKey[0] = 1
			return c.tx(nil, cmd, stranger)
		}, wire.CodeAuth},
		{"bit-flipped signature", func() []byte {
			b := c.tx(rcv, wire.Command{Kind: wire.CmdSUB}, q.keys.Auth)
			b[5] ^= 0x20
			return b
		}, wire.CodeAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ans := c.call(tc.raw())
			if ans.Command.Kind != wire.AnsERR || ans.Command.Code != tc.code {
				t.Fatalf("got %s %s, want ERR %s", ans.Command.Kind, ans.Command.Code, tc.code)
			}
			// The same connection keeps working.
			if pong := c.call(c.tx(nil, wire.Command{Kind: wire.CmdPING}, nil)); pong.Command.Kind != wire.AnsPONG {
				t.Fatalf("after error: %s", pong.Command.Kind)
			}
		})
	}
	stillServing(t, r)
}

func TestReplayFromAnotherSession(t *testing.T) {
	r := startRelay(t, nil)
	q := newQueue(t, dial(t, r), true)
	a, b := dialRaw(t, r), dialRaw(t, r)
	send := a.tx(q.info.SndID[:], wire.Command{Kind: wire.CmdSEND, Body: []byte("once")}, q.sndKey)
	if ans := a.call(send); ans.Command.Kind != wire.AnsOK {
		t.Fatalf("original: %s", ans.Command.Kind)
	}
	if ans := b.call(send); ans.Command.Kind != wire.AnsERR || ans.Command.Code != wire.CodeAuth {
		t.Fatalf("replay: %s %s", ans.Command.Kind, ans.Command.Code)
	}
	sub := a.tx(q.info.RcvID[:], wire.Command{Kind: wire.CmdSUB}, q.keys.Auth)
	if ans := b.call(sub); ans.Command.Code != wire.CodeAuth {
		t.Fatalf("replayed SUB: %s %s", ans.Command.Kind, ans.Command.Code)
	}
}

// TestAuthSameBytes: a missing queue and a wrong key give identical bytes.
func TestAuthSameBytes(t *testing.T) {
	r := startRelay(t, nil)
	q := newQueue(t, dial(t, r), true)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	var missing wire.QueueID
	_, _ = rand.Read(missing[:])
	for _, kind := range []wire.Kind{wire.CmdSUB, wire.CmdSEND} {
		exists, gone := q.info.RcvID, missing
		if kind == wire.CmdSEND {
			exists = q.info.SndID
		}
		var answers [2][]byte
		for i, id := range []wire.QueueID{exists, gone} {
			c := dialRaw(t, r)
			// Same correlation ID and entity length in both cases; only
			// the entity differs, so compare with it masked.
			c.send(c.tx(id[:], wire.Command{Kind: kind, Body: []byte("b")}, stranger))
			ans := c.recv()[0]
			answers[i] = bytes.Replace(ans, id[:], make([]byte, wire.IDSize), 1)
		}
		if !bytes.Equal(answers[0], answers[1]) {
			t.Fatalf("%s: AUTH answers differ:\n%x\n%x", kind, answers[0], answers[1])
		}
		ans, _ := wire.ParseTransmission(answers[0])
		if ans.Command.Code != wire.CodeAuth {
			t.Fatalf("%s: %s", kind, ans.Command.Code)
		}
	}
}

func TestHalfOpenConnectionIsClosed(t *testing.T) {
	r := startRelay(t, func(c *relay.Config) {
		c.Limits.PingInterval = 50 * time.Millisecond
		// Long enough for the healthy client to answer on a busy machine.
		c.Limits.PingTimeout = scaled(500 * time.Millisecond)
	})
	// A healthy client keeps reading, so it answers pings and survives.
	healthy := dial(t, r)
	// A raw connection that never reads again cannot answer pings.
	dialRaw(t, r)
	deadline := time.Now().Add(scaled(5 * time.Second))
	for r.srv.Connections() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections, want the silent one closed", r.srv.Connections())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if err := healthy.Ping(ctxT(t)); err != nil {
		t.Fatalf("healthy client dropped: %v", err)
	}
}

func TestRetentionSweep(t *testing.T) {
	r := startRelay(t, nil)
	c := dial(t, r)
	ctx := ctxT(t)
	q := newQueue(t, c, true)
	for range 3 {
		if err := c.Send(ctx, q.info.SndID, q.sndKey, []byte("old")); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := r.srv.Sweep(time.Now().Add(20 * 24 * time.Hour)); n != 0 || err != nil {
		t.Fatalf("swept %d before retention: %v", n, err)
	}
	if n, err := r.srv.Sweep(time.Now().Add(22 * 24 * time.Hour)); n != 3 || err != nil {
		t.Fatalf("swept %d, want 3: %v", n, err)
	}
	if _, ok, err := c.Get(ctx, q.sub); ok || err != nil {
		t.Fatalf("expired message still there: %v %v", ok, err)
	}
}

// TestClientNotReading: a client that floods commands and never reads
// its answers is no longer read once its output is full, and is dropped
// when a block cannot be written within WriteTimeout; others are
// unaffected.
func TestClientNotReading(t *testing.T) {
	reg := prometheus.NewRegistry()
	var m *relay.Metrics
	r := startRelay(t, func(c *relay.Config) {
		c.Limits.WriteTimeout = scaled(500 * time.Millisecond)
		var err error
		m, err = relay.NewMetrics(reg, func() (int64, int64, error) { return 0, 0, nil })
		if err != nil {
			t.Fatal(err)
		}
		c.Metrics = m
	})
	c := dialRaw(t, r)
	pings := make([][]byte, 255)
	for i := range pings {
		pings[i] = c.tx(nil, wire.Command{Kind: wire.CmdPING}, nil)
	}
	var b wire.BlockBuilder
	for _, p := range pings {
		b.Add(p)
	}
	// Enough PONGs to fill the socket buffers many times over; the raw
	// client never reads them. Its writes block once the relay stops
	// reading, and fail once the relay drops it.
	wctx, cancel := context.WithTimeout(context.Background(), scaled(30*time.Second))
	defer cancel()
	for range 4000 {
		block, err := c.sess.Seal(b.Payload())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ws.Write(wctx, websocket.MessageBinary, block); err != nil {
			break // the relay gave up on us
		}
	}
	waitFor(t, "the non-reading client dropped", func() bool { return r.srv.Connections() == 0 })
	if n := relay.ClosedFor(m, "client not reading"); n != 1 {
		t.Fatalf("closes counted as client not reading: %v", n)
	}
	stillServing(t, r)
}

// TestHandshakeTimeout: a connection that never says hello is dropped.
func TestHandshakeTimeout(t *testing.T) {
	r := startRelay(t, func(c *relay.Config) { c.Limits.HandshakeTimeout = 100 * time.Millisecond })
	ws, _, err := websocket.Dial(ctxT(t), r.addr.WebSocketURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	start := time.Now()
	if _, _, err := ws.Read(ctxT(t)); err == nil {
		t.Fatal("relay sent something before the hello")
	}
	if d := time.Since(start); d > scaled(5*time.Second) {
		t.Fatalf("dropped after %v", d)
	}
	stillServing(t, r)
}
