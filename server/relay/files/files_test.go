package files_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

func asClose(err error, ce *websocket.CloseError) bool { return errors.As(err, ce) }

// TestLifecycle: create for 3 recipients (padded to 4), upload, every
// recipient downloads the same bytes, acknowledgements and deletion.
func TestLifecycle(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	ctx := ctxT(t)
	snd, rcpts, err := c.CreateChunk(ctx, wire.Class256K, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rcpts) != 3 {
		t.Fatalf("%d recipients", len(rcpts))
	}
	if _, err := c.Download(ctx, rcpts[0]); !errors.Is(err, wire.CodeNoMsg) {
		t.Fatalf("download before upload: %v", err)
	}
	data := randomChunk(t, wire.Class256K)
	if err := c.Upload(ctx, snd, data); err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(ctx, snd, data); err != nil {
		t.Fatalf("retried upload of the same bytes: %v", err)
	}
	other := randomChunk(t, wire.Class256K)
	if err := c.Upload(ctx, snd, other); !errors.Is(err, wire.CodeProhibited) {
		t.Fatalf("upload of other bytes: %v", err)
	}
	for _, rc := range rcpts {
		got, err := c.Download(ctx, rc)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("download: %v", err)
		}
	}
	if used, n, _ := r.st.Usage(); used != int64(wire.Class256K.Size())+files.MetadataCost(4) || n != 1 {
		t.Fatalf("usage %d bytes %d chunks", used, n)
	}
	if err := c.Ack(ctx, rcpts[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Download(ctx, rcpts[0]); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("download after ack: %v", err)
	}
	if err := c.Ack(ctx, rcpts[0]); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("second ack: %v", err)
	}
	if _, err := c.Download(ctx, rcpts[1]); err != nil {
		t.Fatalf("other recipient after an ack: %v", err)
	}
	if err := c.DeleteChunk(ctx, snd); err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcpts[1:] {
		if _, err := c.Download(ctx, rc); !errors.Is(err, wire.CodeAuth) {
			t.Fatalf("download after delete: %v", err)
		}
	}
	if err := c.Upload(ctx, snd, data); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("upload after delete: %v", err)
	}
	if err := c.DeleteChunk(ctx, snd); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("second delete: %v", err)
	}
	expectEmpty(t, r)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestAllAcksDelete: the chunk goes once every recipient acknowledged.
func TestAllAcksDelete(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	ctx := ctxT(t)
	snd, rcpts, _ := uploaded(t, c, wire.Class64K, 2)
	for _, rc := range rcpts {
		if err := c.Ack(ctx, rc); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DeleteChunk(ctx, snd); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("chunk still there after every ack: %v", err)
	}
	expectEmpty(t, r)
}

// TestBytesDiffer: what a recipient downloads shares no 32-byte run with
// what the sender uploaded, and two downloads differ.
func TestBytesDiffer(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	_, rcpts, data := uploaded(t, c, wire.Class64K, 1)
	rw := dialRaw(t, r)
	var got [][]byte
	for range 2 {
		rw.send(wire.ClassControl, wire.FileTransmission{EntityID: rcpts[0].RcvID[:], Command: wire.FileCommand{Kind: wire.CmdFGET}}, rcpts[0].Key)
		tr, class := rw.recv()
		if tr.Command.Kind != wire.AnsCHUNK || class != wire.Class64K {
			t.Fatalf("%s in a %s frame", tr.Command.Kind, class)
		}
		got = append(got, bytes.Clone(tr.Command.Data))
	}
	if bytes.Equal(got[0], got[1]) {
		t.Fatal("two downloads are identical")
	}
	for _, g := range got {
		for i := 0; i+32 <= len(data); i += 32 {
			if bytes.Contains(g, data[i:i+32]) {
				t.Fatalf("downloaded bytes contain uploaded bytes at %d", i)
			}
		}
		if opened, err := wire.OpenChunk(&rcpts[0].BoxKey, g); err != nil || !bytes.Equal(opened, data) {
			t.Fatalf("open: %v", err)
		}
	}
}

// TestIDsUnlinkable: sender and recipient IDs are distinct random values
// with no shared 4-byte run, and none of them is stored in clear.
func TestIDsUnlinkable(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	snd, rcpts, err := c.CreateChunk(ctxT(t), wire.Class64K, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := [][]byte{snd.SndID[:]}
	for _, rc := range rcpts {
		ids = append(ids, rc.RcvID[:])
	}
	for i, a := range ids {
		for j, b := range ids {
			if i == j {
				continue
			}
			for k := 0; k+4 <= len(a); k++ {
				if bytes.Contains(b, a[k:k+4]) {
					t.Fatalf("IDs %d and %d share bytes", i, j)
				}
			}
		}
	}
	_ = r.st.Close()
	db, err := os.ReadFile(filepath.Join(r.dir, "chunks.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if bytes.Contains(db, id) {
			t.Fatalf("ID %d stored in clear", i)
		}
	}
}

// TestAuthIndistinguishable: a missing chunk and a wrong signature get the
// same answer for every signed command.
func TestAuthIndistinguishable(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	snd, rcpts, err := c.CreateChunk(ctxT(t), wire.Class64K, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, wrong, _ := ed25519.GenerateKey(rand.Reader)
	var missing wire.ChunkID
	_, _ = rand.Read(missing[:])
	rw := dialRaw(t, r)
	cases := []struct {
		class wire.ChunkClass
		kind  wire.FileKind
		id    wire.ChunkID
		data  []byte
	}{
		{wire.ClassControl, wire.CmdFGET, rcpts[0].RcvID, nil},
		{wire.ClassControl, wire.CmdFACK, rcpts[0].RcvID, nil},
		{wire.ClassControl, wire.CmdFDEL, snd.SndID, nil},
		{wire.Class64K, wire.CmdFPUT, snd.SndID, randomChunk(t, wire.Class64K)},
	}
	for _, tc := range cases {
		var answers [][]byte
		for _, id := range []wire.ChunkID{tc.id, missing} {
			rw.send(tc.class, wire.FileTransmission{EntityID: id[:], Command: wire.FileCommand{Kind: tc.kind, Data: tc.data}}, wrong)
			tr := rw.expectErr(wire.CodeAuth)
			if !bytes.Equal(tr.EntityID, id[:]) {
				t.Fatalf("%s: entity ID not echoed", tc.kind)
			}
			tr.CorrID, tr.EntityID = nil, nil
			b, _ := tr.Marshal()
			answers = append(answers, b)
		}
		if !bytes.Equal(answers[0], answers[1]) {
			t.Fatalf("%s: AUTH answers differ", tc.kind)
		}
	}
	// Unsigned commands are CMD; a signature from another session is AUTH.
	rw.send(wire.ClassControl, wire.FileTransmission{EntityID: rcpts[0].RcvID[:], Command: wire.FileCommand{Kind: wire.CmdFGET}}, nil)
	rw.expectErr(wire.CodeCmd)
	other := dialRaw(t, r)
	tr := wire.FileTransmission{CorrID: []byte{1}, EntityID: rcpts[0].RcvID[:], Command: wire.FileCommand{Kind: wire.CmdFGET}}
	signed, _ := tr.Sign(other.sess.ID, rcpts[0].Key)
	rw.sendRaw(wire.ClassControl, signed)
	rw.expectErr(wire.CodeAuth)
}

// TestQuota: the quota counts stored bytes and chunk records. An FPUT
// whose bytes do not fit is QUOTA and leaves no file; an FNEW whose
// records do not fit is QUOTA; deleting makes room.
func TestQuota(t *testing.T) {
	size := int64(wire.Class1M.Size())
	r := startRelay(t, 2*size+3*files.MetadataCost(1), nil)
	c := dial(t, r)
	ctx := ctxT(t)
	var made []client.SenderChunk
	for range 2 {
		s, _, _ := uploaded(t, c, wire.Class1M, 1)
		made = append(made, s)
	}
	// Room for the records of one more chunk, not for its bytes.
	snd, _, err := c.CreateChunk(ctx, wire.Class64K, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := randomChunk(t, wire.Class64K)
	if err := c.Upload(ctx, snd, data); !errors.Is(err, wire.CodeQuota) {
		t.Fatalf("upload over quota: %v", err)
	}
	if fs := chunkFiles(t, r); len(fs) != 2 {
		t.Fatalf("a refused upload left a file: %v", fs)
	}
	if _, _, err := c.CreateChunk(ctx, wire.Class64K, 1, nil); !errors.Is(err, wire.CodeQuota) {
		t.Fatalf("records over quota: %v", err)
	}
	if err := c.DeleteChunk(ctx, made[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(ctx, snd, data); err != nil {
		t.Fatalf("after delete: %v", err)
	}
	if used, n, _ := r.st.Usage(); used != size+int64(wire.Class64K.Size())+2*files.MetadataCost(1) || n != 2 {
		t.Fatalf("usage %d bytes %d chunks", used, n)
	}
}

// TestExpiry: a sweep past the retention deletes chunks and their files,
// and only those that are due.
func TestExpiry(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	ctx := ctxT(t)
	_, rcpts, _ := uploaded(t, c, wire.Class64K, 1)
	if n, err := r.srv.Sweep(time.Now().Add(47 * time.Hour)); err != nil || n != 0 {
		t.Fatalf("early sweep: %d %v", n, err)
	}
	if _, err := c.Download(ctx, rcpts[0]); err != nil {
		t.Fatal(err)
	}
	if n, err := r.srv.Sweep(time.Now().Add(49 * time.Hour)); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if _, err := c.Download(ctx, rcpts[0]); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("download after expiry: %v", err)
	}
	expectEmpty(t, r)
}

// TestTamperedChunk: a byte flipped in the stored file makes the download
// fail (the relay checks the digest it took at upload).
func TestTamperedChunk(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	ctx := ctxT(t)
	_, rcpts, _ := uploaded(t, c, wire.Class64K, 1)
	fs := chunkFiles(t, r)
	if len(fs) != 1 {
		t.Fatalf("files %v", fs)
	}
	b, _ := os.ReadFile(fs[0])
	b[1234] ^= 0x20
	if err := os.WriteFile(fs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Download(ctx, rcpts[0]); !errors.Is(err, wire.CodeInternal) {
		t.Fatalf("tampered download: %v", err)
	}
	_ = os.WriteFile(fs[0], b[:100], 0o600)
	if _, err := c.Download(ctx, rcpts[0]); !errors.Is(err, wire.CodeInternal) {
		t.Fatalf("truncated file: %v", err)
	}
	_ = os.Remove(fs[0])
	if _, err := c.Download(ctx, rcpts[0]); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestBadSizes: chunks of the wrong size or in the wrong frame are LARGE;
// commands in the wrong frame or with bad arguments are CMD.
func TestBadSizes(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	ctx := ctxT(t)
	snd, _, err := c.CreateChunk(ctx, wire.Class64K, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(ctx, snd, make([]byte, 1000)); !errors.Is(err, wire.CodeLarge) {
		t.Fatalf("client-side size check: %v", err)
	}
	if _, _, err := c.CreateChunk(ctx, wire.ClassControl, 1, nil); !errors.Is(err, wire.CodeCmd) {
		t.Fatalf("client-side class check: %v", err)
	}
	rw := dialRaw(t, r)
	put := func(class wire.ChunkClass, n int) {
		t.Helper()
		rw.send(class, wire.FileTransmission{EntityID: snd.SndID[:], Command: wire.FileCommand{Kind: wire.CmdFPUT, Data: make([]byte, n)}}, snd.Key)
	}
	put(wire.ClassControl, 1000)
	rw.expectErr(wire.CodeLarge)
	put(wire.Class256K, wire.Class64K.Size()) // right size, wrong frame
	rw.expectErr(wire.CodeLarge)
	put(wire.Class256K, wire.Class256K.Size()) // a bigger chunk
	rw.expectErr(wire.CodeLarge)
	put(wire.Class64K, wire.Class64K.Size()-1)
	rw.expectErr(wire.CodeLarge)
	// FPUT larger than the largest chunk: LARGE from the parser.
	big := append([]byte{0, 1, 9, wire.IDSize}, snd.SndID[:]...)
	big = append(append(big, "FPUT "...), make([]byte, wire.MaxChunkSize+1)...)
	rw.sendRaw(wire.Class4M, big)
	rw.expectErr(wire.CodeLarge)
	// A control command in a chunk frame.
	rw.send(wire.Class64K, wire.FileTransmission{Command: wire.FileCommand{Kind: wire.CmdFPING}}, nil)
	rw.expectErr(wire.CodeCmd)
	// FNEW with 3 recipients, an unknown class, an answer tag, an unknown tag.
	fnew := wire.FileTransmission{CorrID: []byte{1}, Command: wire.FileCommand{Kind: wire.CmdFNEW, Class: wire.Class64K, Recipients: make([]wire.ChunkRecipientKey, 4)}}
	b, _ := fnew.Marshal()
	at := bytes.Index(b, []byte("FNEW ")) // the tag follows the envelope
	for name, mutate := range map[string]func([]byte) []byte{
		"3 recipients": func(b []byte) []byte { b[at+5+1+32+1] = 3; return b },
		"class 7":      func(b []byte) []byte { b[at+5] = 7; return b },
		"answer tag":   func(b []byte) []byte { return append(b[:at:at], "OK"...) },
		"unknown tag":  func(b []byte) []byte { return append(b[:at:at], "FOO"...) },
	} {
		rw.sendRaw(wire.ClassControl, mutate(bytes.Clone(b)))
		if tr := rw.expectErr(wire.CodeCmd); len(tr.CorrID) != 1 {
			t.Fatalf("%s: corr ID not echoed", name)
		}
	}
	// Entity ID on FNEW / missing on FGET; missing correlation ID.
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	rw.send(wire.ClassControl, wire.FileTransmission{EntityID: snd.SndID[:], Command: wire.FileCommand{Kind: wire.CmdFPING}}, nil)
	rw.expectErr(wire.CodeCmd)
	rw.send(wire.ClassControl, wire.FileTransmission{Command: wire.FileCommand{Kind: wire.CmdFGET}}, key)
	rw.expectErr(wire.CodeCmd)
	// PING must not be signed (as on the queue endpoint).
	rw.send(wire.ClassControl, wire.FileTransmission{Command: wire.FileCommand{Kind: wire.CmdFPING}}, key)
	rw.expectErr(wire.CodeCmd)
	tr := wire.FileTransmission{Command: wire.FileCommand{Kind: wire.CmdFPING}}
	nocorr, _ := tr.Marshal()
	rw.sendRaw(wire.ClassControl, nocorr)
	rw.expectErr(wire.CodeCmd)
	// Broken framing: BLOCK with empty IDs; the session goes on.
	rw.sendRaw(wire.ClassControl, []byte{7})
	if tr := rw.expectErr(wire.CodeBlock); len(tr.CorrID) != 0 {
		t.Fatal("BLOCK must not echo IDs")
	}
	rw.send(wire.ClassControl, wire.FileTransmission{Command: wire.FileCommand{Kind: wire.CmdFPING}}, nil)
	if tr, _ := rw.recv(); tr.Command.Kind != wire.AnsFPONG {
		t.Fatalf("after errors: %s", tr.Command.Kind)
	}
}

// TestPassword: a relay with a password refuses FNEW without it; a relay
// without one ignores a password sent in FNEW.
func TestPassword(t *testing.T) {
	open := startRelay(t, 64*mib, nil)
	if _, _, err := dial(t, open).CreateChunk(ctxT(t), wire.Class64K, 1, []byte("unneeded")); err != nil {
		t.Fatalf("password to a relay without one: %v", err)
	}
	r := startRelay(t, 64*mib, func(c *files.Config) { c.Password = []byte("s3cret") })
	c := dial(t, r)
	ctx := ctxT(t)
	if _, _, err := c.CreateChunk(ctx, wire.Class64K, 1, nil); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("without password: %v", err)
	}
	if _, _, err := c.CreateChunk(ctx, wire.Class64K, 1, []byte("wrong")); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, _, err := c.CreateChunk(ctx, wire.Class64K, 1, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentChunks: many chunks in flight on one connection, with the
// default limits and with one chunk operation at a time on the relay.
func TestConcurrentChunks(t *testing.T) {
	t.Run("default", func(t *testing.T) { concurrentChunks(t, nil) })
	t.Run("tight", func(t *testing.T) {
		concurrentChunks(t, func(c *files.Config) { c.Limits.MaxChunkOps, c.Limits.MaxInFlight = 1, 2 })
	})
}

func concurrentChunks(t *testing.T, mod func(*files.Config)) {
	r := startRelay(t, 256*mib, mod)
	c := dial(t, r)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		class := wire.Classes()[i%3]
		wg.Go(func() {
			snd, rcpts, err := c.CreateChunk(ctx, class, 1, nil)
			if err != nil {
				errs <- err
				return
			}
			data := make([]byte, class.Size())
			_, _ = rand.Read(data)
			if err := c.Upload(ctx, snd, data); err != nil {
				errs <- err
				return
			}
			got, err := c.Download(ctx, rcpts[0])
			if err == nil && !bytes.Equal(got, data) {
				err = errors.New("downloaded other bytes")
			}
			if err == nil {
				err = c.Ack(ctx, rcpts[0])
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if used, n, _ := r.st.Usage(); used != 0 || n != 0 {
		t.Fatalf("after all acks: %d bytes %d chunks", used, n)
	}
}

// TestReconnect: after the connection drops, the client reconnects and
// the chunk (on disk) is still there; commands in flight fail clearly.
func TestReconnect(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	ctx := ctxT(t)
	_, rcpts, data := uploaded(t, c, wire.Class64K, 1)
	r.hs.CloseClientConnections()
	deadline := time.Now().Add(scaled(10 * time.Second))
	for {
		got, err := c.Download(ctx, rcpts[0])
		if err == nil {
			if !bytes.Equal(got, data) {
				t.Fatal("other bytes after reconnect")
			}
			break
		}
		if !errors.Is(err, client.ErrConnectionLost) || time.Now().After(deadline) {
			t.Fatalf("after drop: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = c.Close()
	if _, err := c.Download(ctx, rcpts[0]); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestRestart: chunks survive a restart of the store; interrupted uploads
// in tmp/ are cleared; start-up reads no chunk.
func TestRestart(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	_, rcpts, data := uploaded(t, c, wire.Class64K, 1)
	_ = c.Close()
	_ = r.srv.Close()
	_ = r.st.Close()
	leftover := filepath.Join(r.dir, "tmp", "up-123")
	if err := os.WriteFile(leftover, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := files.OpenStore(r.dir, 64*mib)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tmp not cleared: %v", err)
	}
	_, ch, err := st.ByRecipient(files.RecipientKeyOf(rcpts[0].RcvID))
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Read(&ch)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after restart: %v", err)
	}
}

// TestProtocolViolations: the relay closes sessions that send text, frames
// of a size no class has, or frames that do not decrypt.
func TestProtocolViolations(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	ctx := ctxT(t)
	rw := dialRaw(t, r)
	_ = rw.ws.Write(ctx, websocket.MessageText, []byte("hi"))
	if got := rw.closeReason(); got != "binary frames only" {
		t.Fatalf("text: %q", got)
	}
	rw = dialRaw(t, r)
	_ = rw.ws.Write(ctx, websocket.MessageBinary, make([]byte, wire.BlockSize+1))
	if got := rw.closeReason(); got != "frame size must be a chunk class size" {
		t.Fatalf("odd size: %q", got)
	}
	rw = dialRaw(t, r)
	_ = rw.ws.Write(ctx, websocket.MessageBinary, make([]byte, wire.BlockSize))
	if got := rw.closeReason(); got != "frame authentication failed" {
		t.Fatalf("garbage frame: %q", got)
	}
	ws, _, err := websocket.Dial(ctx, r.addr.FilesURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_ = ws.Write(ctx, websocket.MessageBinary, make([]byte, wire.BlockSize))
	rw = &raw{t: t, ws: ws}
	if got := rw.closeReason(); got != "bad client hello" {
		t.Fatalf("bad hello: %q", got)
	}
}

func TestConfig(t *testing.T) {
	_, id, _ := ed25519.GenerateKey(rand.Reader)
	st, err := files.OpenStore(t.TempDir(), mib)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bad := []files.Config{
		{Store: st},
		{Identity: id},
		{Identity: id, Store: st, Limits: files.Limits{Retention: time.Hour}},
	}
	for i, cfg := range bad {
		if _, err := files.New(cfg); !errors.Is(err, files.ErrConfig) {
			t.Fatalf("config %d: %v", i, err)
		}
	}
	if _, err := files.OpenStore(t.TempDir(), 0); err == nil {
		t.Fatal("zero quota accepted")
	}
}
