package relay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/relay"
	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

type testRelay struct {
	srv   *relay.Server
	st    *store.Store
	addr  wire.Address
	dbDir string
}

func startRelay(t *testing.T, mod func(*relay.Config)) *testRelay {
	t.Helper()
	return startRelayStore(t, store.Options{}, mod)
}

// startRelayStore is startRelay with a store opened with opts.
func startRelayStore(t *testing.T, opts store.Options, mod func(*relay.Config)) *testRelay {
	t.Helper()
	_, id, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := store.OpenWith(filepath.Join(dir, "queues.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := relay.Config{Identity: id, Store: st, Limits: relay.DefaultLimits()}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(wire.EndpointPath, srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = srv.Close()
		hs.Close()
		_ = st.Close()
	})
	_, p, _ := net.SplitHostPort(hs.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	return &testRelay{srv: srv, st: st, addr: srv.Address("127.0.0.1", uint16(port)), dbDir: dir}
}

// scaled stretches a test deadline by WISP_TEST_SCALE (default 1;
// WISP_TEST_SLOW is another name for it), the one factor every deadline
// in these tests derives from, for slow or busy machines.
func scaled(d time.Duration) time.Duration {
	for _, name := range []string{"WISP_TEST_SCALE", "WISP_TEST_SLOW"} {
		if f, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && f >= 1 {
			return time.Duration(float64(d) * f)
		}
	}
	return d
}

// waitFor polls cond until it holds, failing the test after a scaled
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(scaled(30 * time.Second))
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), scaled(20*time.Second))
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, r *testRelay) *client.Client {
	t.Helper()
	c, err := client.Dial(ctxT(t), r.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// queue is a created and secured queue with both sides' keys.
type queue struct {
	info   client.QueueInfo
	keys   client.RecipientKeys
	sub    client.Subscription
	sndKey ed25519.PrivateKey
}

func newQueue(t *testing.T, c *client.Client, secure bool) *queue {
	t.Helper()
	q, err := tryNewQueue(ctxT(t), c, secure)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// tryNewQueue is newQueue for goroutines other than the test's.
func tryNewQueue(ctx context.Context, c *client.Client, secure bool) (*queue, error) {
	keys, err := client.NewRecipientKeys()
	if err != nil {
		return nil, err
	}
	info, err := c.New(ctx, keys, nil)
	if err != nil {
		return nil, err
	}
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	q := &queue{info: info, keys: keys, sub: info.Subscription(keys), sndKey: sk}
	if secure {
		if err := c.Secure(ctx, info.SndID, sk); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func nextEvent(t *testing.T, c *client.Client, kinds ...client.EventKind) client.Event {
	t.Helper()
	timeout := time.After(scaled(10 * time.Second))
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatal("events closed")
			}
			for _, k := range kinds {
				if ev.Kind == k {
					return ev
				}
			}
		case <-timeout:
			t.Fatalf("no event of kinds %v", kinds)
		}
	}
}

func noEvent(t *testing.T, c *client.Client, d time.Duration, kind client.EventKind) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-c.Events():
			if ev.Kind == kind {
				t.Fatalf("unexpected event %v", ev)
			}
		case <-deadline:
			return
		}
	}
}

func wantCode(t *testing.T, err error, code wire.ErrCode) {
	t.Helper()
	if !errors.Is(err, code) {
		t.Fatalf("got %v, want ERR %s", err, code)
	}
}

// rawConn speaks the protocol by hand, for inputs the client never sends.
type rawConn struct {
	t    *testing.T
	ws   *websocket.Conn
	sess *wire.Session
	corr uint64
}

func dialRaw(t *testing.T, r *testRelay) *rawConn {
	t.Helper()
	ctx := ctxT(t)
	ws, _, err := websocket.Dial(ctx, r.addr.WebSocketURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	hs, hello, err := wire.NewClientHandshake(r.addr.KeyHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageBinary, hello); err != nil {
		t.Fatal(err)
	}
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sess, confirm, err := hs.Finish(b, wire.SupportedVersions())
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageBinary, confirm); err != nil {
		t.Fatal(err)
	}
	return &rawConn{t: t, ws: ws, sess: sess}
}

func (c *rawConn) nextCorr() []byte {
	c.corr++
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, c.corr)
	return b
}

// tx builds a transmission, signed by key when key is not nil.
func (c *rawConn) tx(entity []byte, cmd wire.Command, key ed25519.PrivateKey) []byte {
	c.t.Helper()
	t := wire.Transmission{CorrID: c.nextCorr(), EntityID: entity, Command: cmd}
	var raw []byte
	var err error
	if key != nil {
		raw, err = t.Sign(c.sess.ID, key)
	} else {
		raw, err = t.Marshal()
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return raw
}

func (c *rawConn) sendPayload(payload []byte) {
	c.t.Helper()
	block, err := c.sess.Seal(payload)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.ws.Write(ctxT(c.t), websocket.MessageBinary, block); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) send(raws ...[]byte) {
	c.t.Helper()
	var b wire.BlockBuilder
	for _, r := range raws {
		if !b.Add(r) {
			c.t.Fatal("does not fit")
		}
	}
	c.sendPayload(b.Payload())
}

// recv returns the raw transmissions of the next block.
func (c *rawConn) recv() [][]byte {
	c.t.Helper()
	_, b, err := c.ws.Read(ctxT(c.t))
	if err != nil {
		c.t.Fatal(err)
	}
	p, err := c.sess.Open(b)
	if err != nil {
		c.t.Fatal(err)
	}
	ts, err := wire.SplitBlock(p)
	if err != nil {
		c.t.Fatal(err)
	}
	out := make([][]byte, len(ts))
	for i, x := range ts {
		out[i] = append([]byte(nil), x...)
	}
	return out
}

// call sends one transmission and returns the single answer.
func (c *rawConn) call(raw []byte) wire.Transmission {
	c.t.Helper()
	c.send(raw)
	ts := c.recv()
	if len(ts) != 1 {
		c.t.Fatalf("got %d answers", len(ts))
	}
	t, err := wire.ParseTransmission(ts[0])
	if err != nil {
		c.t.Fatal(err)
	}
	return t
}

// closeReason waits for the relay to close the connection and returns
// the close status and reason.
func (c *rawConn) closeReason() (websocket.StatusCode, string) {
	c.t.Helper()
	for {
		_, _, err := c.ws.Read(ctxT(c.t))
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			c.t.Fatalf("connection ended without close frame: %v", err)
		}
	}
}
