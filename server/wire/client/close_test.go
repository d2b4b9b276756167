//go:build !(js && wasm)

package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/wire"
)

// fakeRelay is a minimal relay for the client's own tests: it runs the
// handshake on both endpoints; on the queue endpoint it answers SUB with OK
// and then pushes MSG on that queue as fast as the socket takes them, and
// answers PING with PONG; on the file endpoint it answers PING with PONG.
type fakeRelay struct {
	t      *testing.T
	addr   wire.Address
	boxKey [32]byte
	srv    *httptest.Server
}

func startFakeRelay(t *testing.T) *fakeRelay {
	t.Helper()
	_, identity, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRelay{t: t}
	_, _ = rand.Read(r.boxKey[:])
	mux := http.NewServeMux()
	mux.HandleFunc(wire.FilesPath, func(w http.ResponseWriter, req *http.Request) { r.serve(w, req, identity, true) })
	mux.HandleFunc("/wisp", func(w http.ResponseWriter, req *http.Request) { r.serve(w, req, identity, false) })
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	u, _ := url.Parse(r.srv.URL)
	port, _ := strconv.Atoi(u.Port())
	r.addr = wire.Address{KeyHash: wire.HashIdentity(identity.Public().(ed25519.PublicKey)), Host: "127.0.0.1", Port: uint16(port)}
	return r
}

func (r *fakeRelay) serve(w http.ResponseWriter, req *http.Request, identity ed25519.PrivateKey, files bool) {
	ws, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ws.SetReadLimit(wire.MaxFrameSize)
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	_, hello, err := ws.Read(ctx)
	if err != nil {
		return
	}
	ch, err := wire.ParseClientHello(hello)
	if err != nil {
		return
	}
	pending, rhello, err := wire.RelayRespond(identity, wire.SupportedVersions(), ch)
	if err != nil || ws.Write(ctx, websocket.MessageBinary, rhello) != nil {
		return
	}
	_, confirm, err := ws.Read(ctx)
	if err != nil {
		return
	}
	sess, err := pending.Confirm(confirm)
	if err != nil {
		return
	}
	if files {
		r.serveFiles(ctx, ws, sess)
		return
	}
	r.serveQueues(ctx, ws, sess)
}

func (r *fakeRelay) serveQueues(ctx context.Context, ws *websocket.Conn, sess *wire.Session) {
	out := make(chan []byte, 64)
	go func() {
		defer ws.CloseNow()
		var streaming bool
		var rcvID []byte
		for {
			_, b, err := wire.ReadBlock(ctx, ws)
			if err != nil {
				return
			}
			p, err := sess.Open(b)
			if err != nil {
				return
			}
			ts, err := wire.SplitBlock(p)
			if err != nil {
				return
			}
			for _, raw := range ts {
				t, err := wire.ParseTransmission(raw)
				if err != nil {
					return
				}
				ans := wire.Transmission{CorrID: append([]byte(nil), t.CorrID...), EntityID: append([]byte(nil), t.EntityID...)}
				switch t.Command.Kind {
				case wire.CmdSUB:
					ans.Command.Kind = wire.AnsOK
					rcvID = ans.EntityID
				case wire.CmdPING:
					ans.Command.Kind = wire.AnsPONG
				default:
					ans.Command = wire.Command{Kind: wire.AnsERR, Code: wire.CodeCmd}
				}
				a, err := ans.Marshal()
				if err != nil {
					return
				}
				select {
				case out <- a:
				case <-ctx.Done():
					return
				}
				if rcvID != nil && !streaming {
					streaming = true
					go r.stream(ctx, rcvID, out)
				}
			}
		}
	}()
	for {
		select {
		case a := <-out:
			blocks, err := sess.SealBatch([][]byte{a})
			if err != nil || ws.Write(ctx, websocket.MessageBinary, blocks[0]) != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// stream queues MSG pushes (empty corrID) for rcvID until ctx ends.
func (r *fakeRelay) stream(ctx context.Context, rcvID []byte, out chan<- []byte) {
	for i := 0; ; i++ {
		var id wire.MsgID
		_, _ = rand.Read(id[:])
		sealed := wire.SealMessage(&r.boxKey, id, time.Unix(int64(i), 0), false, []byte("message "+strconv.Itoa(i)))
		t := wire.Transmission{EntityID: rcvID, Command: wire.Command{Kind: wire.AnsMSG, MsgID: id, Body: sealed}}
		raw, err := t.Marshal()
		if err != nil {
			r.t.Error(err)
			return
		}
		select {
		case out <- raw:
		case <-ctx.Done():
			return
		}
	}
}

func (r *fakeRelay) serveFiles(ctx context.Context, ws *websocket.Conn, sess *wire.Session) {
	for {
		_, f, err := wire.ReadFrame(ctx, ws)
		if err != nil {
			return
		}
		raw, _, err := sess.OpenFrame(f)
		if err != nil {
			return
		}
		t, err := wire.ParseFileTransmission(raw)
		if err != nil {
			return
		}
		ans := wire.FileTransmission{CorrID: t.CorrID, EntityID: t.EntityID, Command: wire.FileCommand{Kind: wire.AnsFPONG}}
		if t.Command.Kind != wire.CmdFPING {
			ans.Command = wire.FileCommand{Kind: wire.AnsFERR, Code: wire.CodeCmd}
		}
		out, err := sess.SealFrame(wire.ClassControl, &ans, nil)
		if err != nil || ws.Write(ctx, websocket.MessageBinary, out) != nil {
			return
		}
	}
}

func (r *fakeRelay) subscription(t *testing.T) Subscription {
	t.Helper()
	_, auth, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := Subscription{Auth: auth, BoxKey: new([32]byte)}
	*s.BoxKey = r.boxKey
	_, _ = rand.Read(s.RcvID[:])
	return s
}

// clientGoroutines lists the goroutines running code of this package's
// clients: after Close there must be none, except a run loop that is
// returning (it closes done, which Close waits for, as its last act).
func clientGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		ours := false
		for line := range strings.SplitSeq(g, "\n") {
			if !strings.Contains(line, "wire/client.(*") || strings.HasPrefix(line, "created by") ||
				strings.Contains(line, "(*fakeRelay)") {
				continue
			}
			if !strings.Contains(line, "client.(*Client).run(") && !strings.Contains(line, "client.(*FileClient).run(") {
				ours = true
			}
		}
		if ours {
			left = append(left, g)
		}
	}
	return left
}

// TestCloseWhileMessagesStream closes clients while MSG pushes stream in,
// many times: Close used to close the Events channel while the reader
// goroutine could still be sending a message to it ("send on closed
// channel" killed the process). Every goroutine of the client must be
// done when Close returns.
func TestCloseWhileMessagesStream(t *testing.T) {
	r := startFakeRelay(t)
	rounds := 200
	if testing.Short() {
		rounds = 30
	}
	start := time.Now()
	i := 0
	for ; i < rounds && time.Since(start) < 20*time.Second; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := Dial(ctx, r.addr, Options{EventBuffer: 1 + i%4})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		sub := r.subscription(t)
		if errs := c.Subscribe(ctx, sub); errs[0] != nil {
			cancel()
			t.Fatal(errs[0])
		}
		// Consume a varying number of events so the reader is caught at
		// every point: blocked on a full channel, between blocks, emitting.
		var wg sync.WaitGroup
		wg.Go(func() {
			for ev := range c.Events() {
				if ev.Kind == EventMessage && ev.Err != nil {
					t.Errorf("message did not open: %v", ev.Err)
				}
			}
		})
		want := i % 3
		for got := 0; got < want; {
			if c.Ping(ctx) == nil {
				got++
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		cancel()
		wg.Wait() // Events is closed by Close
		if left := clientGoroutines(); len(left) > 0 {
			t.Fatalf("round %d: %d goroutines still running after Close:\n%s", i, len(left), strings.Join(left, "\n\n"))
		}
	}
	t.Logf("%d rounds in %v", i, time.Since(start).Round(time.Millisecond))
}

// TestFileClientCloseWaits: a FileClient's goroutines (reader, keepalive,
// its PINGs) are all done when Close returns.
func TestFileClientCloseWaits(t *testing.T) {
	r := startFakeRelay(t)
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		fc, err := DialFiles(ctx, r.addr, Options{PingInterval: time.Millisecond, PingTimeout: 5 * time.Second})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if err := fc.Ping(ctx); err != nil {
			cancel()
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%4) * time.Millisecond) // let keepalive PINGs run
		_ = fc.Close()
		cancel()
		if left := clientGoroutines(); len(left) > 0 {
			t.Fatalf("round %d: %d goroutines still running after Close:\n%s", i, len(left), strings.Join(left, "\n\n"))
		}
	}
}
