package files_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

type testRelay struct {
	srv  *files.Server
	st   *files.Store
	hs   *httptest.Server
	addr wire.Address
	dir  string
	id   ed25519.PrivateKey
}

const mib = 1 << 20

func startRelay(t *testing.T, quota int64, mod func(*files.Config)) *testRelay {
	t.Helper()
	return startRelayOn(t, quota, mod, nil)
}

// startRelayOn is startRelay with the relay's listener wrapped by wrap
// (if not nil).
func startRelayOn(t *testing.T, quota int64, mod func(*files.Config), wrap func(net.Listener) net.Listener) *testRelay {
	t.Helper()
	_, id, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := files.OpenStore(dir, quota)
	if err != nil {
		t.Fatal(err)
	}
	cfg := files.Config{Identity: id, Store: st, Limits: files.DefaultLimits(), Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := files.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(wire.FilesPath, srv)
	hs := httptest.NewUnstartedServer(mux)
	if wrap != nil {
		hs.Listener = wrap(hs.Listener)
	}
	hs.Start()
	t.Cleanup(func() {
		_ = srv.Close()
		hs.Close()
		_ = st.Close()
	})
	_, p, _ := net.SplitHostPort(hs.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	addr := wire.Address{KeyHash: wire.HashIdentity(id.Public().(ed25519.PublicKey)), Host: "127.0.0.1", Port: uint16(port)}
	return &testRelay{srv: srv, st: st, hs: hs, addr: addr, dir: dir, id: id}
}

// scaled stretches every deadline of these tests, for a slow or busy
// machine: WISP_TEST_SCALE=4 go test ./server/relay/files/ (a number ≥ 1,
// default 1; WISP_TEST_SLOW is another name for it). Deadlines only bound
// how long a test may wait for a condition it then checks exactly; no
// test asserts on how long something took.
func scaled(d time.Duration) time.Duration {
	for _, name := range []string{"WISP_TEST_SCALE", "WISP_TEST_SLOW"} {
		if f, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && f >= 1 {
			return time.Duration(float64(d) * f)
		}
	}
	return d
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), scaled(30*time.Second))
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, failing the test after a deadline
// of 20 s, scaled.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(scaled(20 * time.Second))
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// clock is a settable clock for the FNEW budgets (files.WithClock): it
// stands still unless a test moves it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func dial(t *testing.T, r *testRelay) *client.FileClient {
	t.Helper()
	c, err := client.DialFiles(ctxT(t), r.addr, client.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func randomChunk(t *testing.T, class wire.ChunkClass) []byte {
	t.Helper()
	b := make([]byte, class.Size())
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// uploaded creates a chunk for n recipients and uploads random bytes.
func uploaded(t *testing.T, c *client.FileClient, class wire.ChunkClass, n int) (client.SenderChunk, []client.RecipientChunk, []byte) {
	t.Helper()
	ctx := ctxT(t)
	snd, rcpts, err := c.CreateChunk(ctx, class, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := randomChunk(t, class)
	if err := c.Upload(ctx, snd, data); err != nil {
		t.Fatal(err)
	}
	return snd, rcpts, data
}

// expectEmpty checks that no chunk, reservation or chunk file is left.
func expectEmpty(t *testing.T, r *testRelay) {
	t.Helper()
	used, n, err := r.st.Usage()
	if err != nil || used != 0 || n != 0 || len(chunkFiles(t, r)) != 0 {
		t.Fatalf("store not empty: %d bytes, %d chunks, files %v, %v", used, n, chunkFiles(t, r), err)
	}
}

// chunkFiles lists the chunk files on disk.
func chunkFiles(t *testing.T, r *testRelay) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(r.dir, "chunks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// raw is a hand-driven file session, for what the client never sends.
type raw struct {
	t    *testing.T
	ws   *websocket.Conn
	sess *wire.Session
	corr uint64
}

func dialRaw(t *testing.T, r *testRelay) *raw {
	t.Helper()
	ws, _, err := websocket.Dial(ctxT(t), r.addr.FilesURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return handshakeRaw(t, ws, r)
}

// handshakeRaw runs the client side of the handshake on ws.
func handshakeRaw(t *testing.T, ws *websocket.Conn, r *testRelay) *raw {
	t.Helper()
	ctx := ctxT(t)
	ws.SetReadLimit(wire.MaxFrameSize)
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
	if err := ws.Write(context.Background(), websocket.MessageBinary, confirm); err != nil {
		t.Fatal(err)
	}
	return &raw{t: t, ws: ws, sess: sess}
}

// send seals tr (signed by key unless nil) in a frame of class and
// returns the correlation ID it used.
func (r *raw) send(class wire.ChunkClass, tr wire.FileTransmission, key ed25519.PrivateKey) {
	r.t.Helper()
	r.corr++
	tr.CorrID = binary.BigEndian.AppendUint64(nil, r.corr)
	var b []byte
	var err error
	if key != nil {
		b, err = tr.Sign(r.sess.ID, key)
	} else {
		b, err = tr.Marshal()
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.sendRaw(class, b)
}

func (r *raw) sendRaw(class wire.ChunkClass, b []byte) {
	r.t.Helper()
	f, err := r.sess.SealRawFrame(class, b)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.ws.Write(ctxT(r.t), websocket.MessageBinary, f); err != nil {
		r.t.Fatal(err)
	}
}

func (r *raw) recv() (wire.FileTransmission, wire.ChunkClass) {
	r.t.Helper()
	_, b, err := wire.ReadFrame(ctxT(r.t), r.ws)
	if err != nil {
		r.t.Fatal(err)
	}
	tb, class, err := r.sess.OpenFrame(b)
	if err != nil {
		r.t.Fatal(err)
	}
	tr, err := wire.ParseFileTransmission(tb)
	if err != nil {
		r.t.Fatal(err)
	}
	return tr, class
}

// expectErr reads one answer and checks it is ERR code.
func (r *raw) expectErr(code wire.ErrCode) wire.FileTransmission {
	r.t.Helper()
	tr, class := r.recv()
	if tr.Command.Kind != wire.AnsFERR || tr.Command.Code != code || class != wire.ClassControl {
		r.t.Fatalf("got %s %s in a %s frame, want ERR %s", tr.Command.Kind, tr.Command.Code, class, code)
	}
	return tr
}

// closeReason waits for the relay to close the session and returns why.
func (r *raw) closeReason() string {
	r.t.Helper()
	for {
		_, _, err := r.ws.Read(ctxT(r.t))
		if err != nil {
			var ce websocket.CloseError
			if !asClose(err, &ce) {
				r.t.Fatalf("no close frame: %v", err)
			}
			return ce.Reason
		}
	}
}
