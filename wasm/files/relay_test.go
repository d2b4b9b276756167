//go:build !js

package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"github.com/wisp-chat/wisp/wasm/store"
)

// testRelay is a real relay on loopback: the file store and the queue
// endpoint under one identity and address.
type testRelay struct {
	addr wire.Address
	dir  string
}

func startRelay(t testing.TB) *testRelay {
	t.Helper()
	return startRelayQuota(t, 4<<30)
}

// startRelayQuota starts a relay with a file storage quota of quota bytes.
func startRelayQuota(t testing.TB, quota int64) *testRelay {
	t.Helper()
	r := relaytest.StartQuota(t, quota)
	return &testRelay{addr: r.Addr(), dir: r.FilesDir()}
}

// chunkFiles returns the paths of the chunk files on the relay's disk.
func (r *testRelay) chunkFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(r.dir, "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// scaled stretches a test deadline by WISP_TEST_SCALE (a number ≥ 1,
// default 1; WISP_TEST_SLOW is another name for it), the one factor every
// deadline of these tests derives from, for slow or busy machines.
func scaled(d time.Duration) time.Duration {
	for _, name := range []string{"WISP_TEST_SCALE", "WISP_TEST_SLOW"} {
		if f, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && f >= 1 {
			return time.Duration(float64(d) * f)
		}
	}
	return d
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), scaled(2*time.Minute))
	t.Cleanup(cancel)
	return ctx
}

func dialRelay(t testing.TB, r *testRelay) *client.FileClient {
	t.Helper()
	c, err := client.DialFiles(testContext(t), r.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// counted forwards to a real FileClient, counting calls, the recipients
// asked for in FNEWs (fnewRecipients, their sum) and the bytes given to
// FPUTs (uploadedBytes), and keeping a copy of every uploaded chunk when
// keep is set.
type counted struct {
	Relay
	creates, uploads, downloads, acks, deletes atomic.Int64
	fnewRecipients, uploadedBytes              atomic.Int64
	keep                                       bool
	mu                                         sync.Mutex
	uploaded                                   [][]byte
}

func (c *counted) CreateChunk(ctx context.Context, class wire.ChunkClass, n int, pw []byte) (client.SenderChunk, []client.RecipientChunk, error) {
	c.creates.Add(1)
	c.fnewRecipients.Add(int64(n))
	return c.Relay.CreateChunk(ctx, class, n, pw)
}

func (c *counted) Upload(ctx context.Context, s client.SenderChunk, data []byte) error {
	c.uploads.Add(1)
	c.uploadedBytes.Add(int64(len(data)))
	if c.keep {
		c.mu.Lock()
		c.uploaded = append(c.uploaded, bytes.Clone(data))
		c.mu.Unlock()
	}
	return c.Relay.Upload(ctx, s, data)
}

func (c *counted) Download(ctx context.Context, r client.RecipientChunk) ([]byte, error) {
	c.downloads.Add(1)
	return c.Relay.Download(ctx, r)
}

func (c *counted) Ack(ctx context.Context, r client.RecipientChunk) error {
	c.acks.Add(1)
	return c.Relay.Ack(ctx, r)
}

func (c *counted) DeleteChunk(ctx context.Context, s client.SenderChunk) error {
	c.deletes.Add(1)
	return c.Relay.DeleteChunk(ctx, s)
}

// readCount opens the received file and counts its bytes.
func readCount(st *store.Store, dir store.Key, d *Description) (int64, error) {
	r, err := Open(st, dir, d)
	if err != nil {
		return 0, err
	}
	return io.Copy(io.Discard, r)
}

// readAll opens the received file and returns its plaintext.
func readAll(st *store.Store, dir store.Key, d *Description) ([]byte, error) {
	r, err := Open(st, dir, d)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// sendAll sends plain to r through fc with the default options.
func sendAll(t testing.TB, fc Relay, r *testRelay, plain []byte) (*Description, *SenderState) {
	t.Helper()
	d, st, err := Send(testContext(t), fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{})
	if err != nil {
		t.Fatalf("Send of %d bytes: %v", len(plain), err)
	}
	return d, st
}

// transfer sends plain and receives it into a fresh store through the
// description's encoding.
func transfer(t *testing.T, fc Relay, r *testRelay, plain []byte) (*Description, *SenderState, *store.Store, hackpadfs.FS) {
	t.Helper()
	ctx := testContext(t)
	d, sent := sendAll(t, fc, r, plain)
	b, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	d, err = UnmarshalDescription(b)
	if err != nil {
		t.Fatal(err)
	}
	st, fsys := newMemStore(t)
	if err := Receive(ctx, fc, d, st, "files/f1", ReceiveOptions{}); err != nil {
		t.Fatalf("Receive of %d bytes: %v", len(plain), err)
	}
	return d, sent, st, fsys
}

func TestRoundTrip(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	for _, size := range []int{0, 1, 64*kib - 1, 64 * kib, 64*kib + 1, 3*mib + 7, 20 * mib} {
		plain := randBytes(t, size)
		before := fc.uploads.Load()
		d, _, st, _ := transfer(t, fc, r, plain)
		if want, err := Digest(bytes.NewReader(plain)); err != nil || d.Digest != want {
			t.Fatalf("%d bytes: description digest is not the file's", size)
		}
		if n := fc.uploads.Load() - before; n != int64(len(d.Chunks)) {
			t.Errorf("%d bytes: %d uploads for %d chunks", size, n, len(d.Chunks))
		}
		got, err := readAll(st, "files/f1", d)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if sha256.Sum256(got) != sha256.Sum256(plain) || len(got) != size {
			t.Fatalf("%d bytes: received file differs", size)
		}
	}
	// Every recipient acknowledged: the relay deleted every chunk.
	if f := r.chunkFiles(t); len(f) != 0 {
		t.Fatalf("%d chunk files left on the relay after every acknowledgement", len(f))
	}
}

func TestProgressAndDeleteSent(t *testing.T) {
	r := startRelay(t)
	fc := dialRelay(t, r)
	ctx := testContext(t)
	plain := randBytes(t, 9*mib)
	var calls []int64
	d, sent, err := Send(ctx, fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{
		InFlight: 2,
		Progress: func(done, total int64) {
			if total != 3*4*mib {
				t.Errorf("total %d", total)
			}
			calls = append(calls, done)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 || calls[2] != 3*4*mib {
		t.Fatalf("progress calls %v", calls)
	}
	b, err := sent.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	sent, err = UnmarshalSenderState(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.chunkFiles(t)) != 3 {
		t.Fatalf("%d chunk files on the relay, want 3", len(r.chunkFiles(t)))
	}
	if err := DeleteSent(ctx, fc, sent); err != nil {
		t.Fatal(err)
	}
	if len(r.chunkFiles(t)) != 0 {
		t.Fatal("chunks left after DeleteSent")
	}
	if err := DeleteSent(ctx, fc, sent); err != nil {
		t.Fatalf("DeleteSent of chunks already gone: %v", err)
	}
	st, _ := newMemStore(t)
	if err := Receive(ctx, fc, d, st, "files/f1", ReceiveOptions{}); !errors.Is(err, ErrExpired) {
		t.Fatalf("Receive after DeleteSent: %v, want ErrExpired", err)
	}
}

func TestResume(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	ctx := testContext(t)
	plain := randBytes(t, 20*mib)
	d, _ := sendAll(t, fc, r, plain)
	st, fsys := newMemStore(t)
	cctx, cancel := context.WithCancel(ctx)
	const k = 2
	err := Receive(cctx, fc, d, st, "files/f1", ReceiveOptions{InFlight: 2, Progress: func(done, _ int64) {
		if done >= k*int64(d.Class.Size()) {
			cancel()
		}
	}})
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Receive: %v", err)
	}
	if _, err := Open(st, "files/f1", d); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Open of a partial file: %v, want ErrIncomplete", err)
	}
	keys, err := st.List("files/f1")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < k || len(keys) >= len(d.Chunks) {
		t.Fatalf("%d of %d chunks stored after the cancel", len(keys), len(d.Chunks))
	}
	if fc.acks.Load() != 0 {
		t.Fatal("chunks acknowledged before the file was complete")
	}
	// A record torn by a crash in the middle of its write (PutOnce is not
	// atomic) no longer opens: the resumed Receive fetches it again.
	if err := hackpadfs.WriteFullFile(fsys, "profile/"+string(keys[0]), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	before := fc.downloads.Load()
	var first int64 = -1
	err = Receive(ctx, fc, d, st, "files/f1", ReceiveOptions{Progress: func(done, _ int64) {
		if first < 0 {
			first = done
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if n := fc.downloads.Load() - before; n != int64(len(d.Chunks)-len(keys)+1) {
		t.Fatalf("resumed Receive downloaded %d chunks, want the %d missing and the torn one", n, len(d.Chunks)-len(keys)+1)
	}
	if first != int64(len(keys))*int64(d.Class.Size()) {
		t.Fatalf("resumed progress starts at %d", first)
	}
	got, err := readAll(st, "files/f1", d)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("resumed file differs: %v", err)
	}
	// A third Receive of a complete, acknowledged file downloads nothing
	// and succeeds (the relay's AUTH on FACK means already acknowledged).
	before = fc.downloads.Load()
	if err := Receive(ctx, fc, d, st, "files/f1", ReceiveOptions{}); err != nil || fc.downloads.Load() != before {
		t.Fatalf("Receive of a complete file: %v, %d downloads", err, fc.downloads.Load()-before)
	}
}

func TestTamperOnRelay(t *testing.T) {
	r := startRelay(t)
	fc := dialRelay(t, r)
	ctx := testContext(t)
	plain := randBytes(t, 5*mib)
	d, _ := sendAll(t, fc, r, plain)
	files := r.chunkFiles(t)
	if len(files) != 2 {
		t.Fatalf("%d chunk files, want 2", len(files))
	}
	b, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 1
	if err := os.WriteFile(files[1], b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, _ := newMemStore(t)
	err = Receive(ctx, fc, d, st, "files/f1", ReceiveOptions{})
	if !errors.Is(err, wire.CodeInternal) && !errors.Is(err, ErrCorrupted) {
		t.Fatalf("Receive of a chunk changed on the relay's disk: %v", err)
	}
	if _, err := Open(st, "files/f1", d); err == nil {
		t.Fatal("Open succeeded after a failed Receive")
	}
}

// TestTamperStoredChunk alters the local records between Receive and
// Open, both re-sealed (valid record, wrong ciphertext) and raw (the
// record no longer opens).
func TestTamperStoredChunk(t *testing.T) {
	r := startRelay(t)
	fc := dialRelay(t, r)
	plain := randBytes(t, 5*mib)
	d, _, st, fsys := transfer(t, fc, r, plain)

	k := chunkKey("files/f1", 1)
	rec, err := st.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Clone(rec)
	changed[7] ^= 0x80
	if err := st.Put(k, changed); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(st, "files/f1", d); !errors.Is(err, ErrCorrupted) {
		t.Fatalf("reading a changed chunk: %v, want ErrCorrupted", err)
	}
	// Only the padding changed: still the same file.
	changed = bytes.Clone(rec)
	changed[len(changed)-1] ^= 1
	if err := st.Put(k, changed); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(st, "files/f1", d); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("padding change: %v", err)
	}

	name := "profile/files/f1/c0000"
	sealed, err := hackpadfs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	sealed[len(sealed)/2] ^= 1
	if err := hackpadfs.WriteFullFile(fsys, name, sealed, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(st, "files/f1", d); !errors.Is(err, ErrCorrupted) {
		t.Fatalf("reading a raw-tampered record: %v, want ErrCorrupted", err)
	}
}

// TestCorruptedDeletesRecords: a Receive whose stored chunks fail
// verification reports ErrCorrupted and leaves no records.
func TestCorruptedDeletesRecords(t *testing.T) {
	r := startRelay(t)
	fc := dialRelay(t, r)
	ctx := testContext(t)
	plain := randBytes(t, 100*kib)
	d, _ := sendAll(t, fc, r, plain)
	d.Digest[0] ^= 1 // the relay's bytes are intact; the description disagrees
	st, _ := newMemStore(t)
	if err := Receive(ctx, fc, d, st, "files/f1", ReceiveOptions{}); !errors.Is(err, ErrCorrupted) {
		t.Fatalf("Receive with a wrong digest: %v, want ErrCorrupted", err)
	}
	if keys, err := st.List("files/f1"); err != nil || len(keys) != 0 {
		t.Fatalf("records left after ErrCorrupted: %v, %v", keys, err)
	}
	d.Digest[0] ^= 1
	if err := Receive(ctx, fc, d, st, "files/f1", ReceiveOptions{}); err != nil {
		t.Fatalf("Receive with the right description: %v", err)
	}
}

// hugeFile stands for a file over the limit: it counts reads and returns
// no data (Send is given its size, never reads it).
type hugeFile struct {
	reads atomic.Int64
}

func (h *hugeFile) ReadAt(p []byte, _ int64) (int, error) {
	h.reads.Add(1)
	return 0, errors.New("hugeFile must not be read")
}

func TestTooLarge(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	src := &hugeFile{}
	for _, size := range []int64{MaxFileSize + 1, 4 << 30, -1} {
		d, st, err := Send(testContext(t), fc, r.addr, src, size, SendOptions{})
		if !errors.Is(err, ErrTooLarge) || d != nil || st != nil {
			t.Fatalf("Send of %d bytes: %v", size, err)
		}
	}
	if src.reads.Load() != 0 || fc.creates.Load() != 0 || fc.uploads.Load() != 0 {
		t.Fatalf("refused file was read or uploaded: %d reads, %d creates", src.reads.Load(), fc.creates.Load())
	}
}

// TestShortSource: a source shorter than the declared size fails and the
// chunks created are deleted.
func TestShortSource(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	plain := randBytes(t, 6*mib)
	_, _, err := Send(testContext(t), fc, r.addr, bytes.NewReader(plain), 10*mib, SendOptions{})
	if err == nil {
		t.Fatal("Send of a short source succeeded")
	}
	if fc.deletes.Load() != fc.creates.Load() || len(r.chunkFiles(t)) != 0 {
		t.Fatalf("%d chunks created, %d deleted, %d files left", fc.creates.Load(), fc.deletes.Load(), len(r.chunkFiles(t)))
	}
	// A source that fails half-way (a Blob read refused by the browser).
	_, _, err = Send(testContext(t), fc, r.addr, failingSource{plain, 5 * mib}, int64(len(plain)), SendOptions{})
	if !errors.Is(err, errSourceFailed) {
		t.Fatalf("Send of a failing source: %v", err)
	}
	if fc.deletes.Load() != fc.creates.Load() || len(r.chunkFiles(t)) != 0 {
		t.Fatalf("after a failing source: %d chunks created, %d deleted", fc.creates.Load(), fc.deletes.Load())
	}
}

var errSourceFailed = errors.New("test: the file can no longer be read")

// failingSource reads like b until offset at, then fails.
type failingSource struct {
	b  []byte
	at int64
}

func (f failingSource) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.at {
		return 0, errSourceFailed
	}
	return copy(p, f.b[off:]), nil
}

// TestSendCancelled: cancelling Send stops it and cleans up.
func TestSendCancelled(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	ctx, cancel := context.WithCancel(testContext(t))
	plain := randBytes(t, 20*mib)
	_, _, err := Send(ctx, fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{InFlight: 1, Progress: func(int64, int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Send: %v", err)
	}
	if fc.creates.Load() >= 6 || len(r.chunkFiles(t)) != 0 {
		t.Fatalf("%d chunks created, %d files left", fc.creates.Load(), len(r.chunkFiles(t)))
	}
}

// TestPrivacy: neither the uploaded chunks nor anything in the relay's
// folder holds any 64-byte run of the plaintext. Every 64-byte run
// contains one whole 32-byte block aligned to 32, so it suffices to
// search every offset of the haystack for those blocks.
func TestPrivacy(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r), keep: true}
	plain := bytes.Repeat(randBytes(t, 4*kib), 1100) // repetitive, two chunks
	if _, _, err := Send(testContext(t), fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{}); err != nil {
		t.Fatal(err)
	}
	blocks := make(map[[32]byte]bool)
	for i := 0; i+32 <= len(plain); i += 32 {
		blocks[[32]byte(plain[i:])] = true
	}
	// where returns the offset of a plaintext block in hay, or -1.
	where := func(hay []byte) int {
		for i := 0; i+32 <= len(hay); i++ {
			if blocks[[32]byte(hay[i:])] {
				return i
			}
		}
		return -1
	}
	search := func(what string, hay []byte) {
		t.Helper()
		if i := where(hay); i >= 0 {
			t.Fatalf("%s holds plaintext at offset %d", what, i)
		}
	}
	// Control: the search finds an unaligned 64-byte run.
	if where(append(randBytes(t, 5), plain[4096*7+13:][:64]...)) < 0 {
		t.Fatal("a 64-byte run of the plaintext was not found")
	}
	fc.mu.Lock()
	for _, u := range fc.uploaded {
		search("an uploaded chunk", u)
	}
	fc.mu.Unlock()
	var files int
	err := filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files++
		search(p, b)
		return err
	})
	if err != nil || files < 3 {
		t.Fatalf("walked %d relay files: %v", files, err)
	}
}

// TestQuota: a relay without room answers QUOTA; Send fails with it and
// deletes the chunks it managed to create.
func TestQuota(t *testing.T) {
	r := startRelayQuota(t, 8*mib+64<<10)
	fc := &counted{Relay: dialRelay(t, r)}
	plain := randBytes(t, 20*mib)
	_, _, err := Send(testContext(t), fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{})
	if !errors.Is(err, wire.CodeQuota) {
		t.Fatalf("Send over the relay's quota: %v, want QUOTA", err)
	}
	if len(r.chunkFiles(t)) != 0 {
		t.Fatalf("%d chunk files left", len(r.chunkFiles(t)))
	}
	// The quota is free again.
	if _, _, err := Send(testContext(t), fc, r.addr, bytes.NewReader(plain[:7*mib]), 7*mib, SendOptions{}); err != nil {
		t.Fatalf("Send within the quota after cleanup: %v", err)
	}
}

// flaky fails the first attempt of every upload and download with a lost
// connection, as a dropped WebSocket does.
type flaky struct {
	counted
	mu   sync.Mutex
	seen map[string]bool
}

func (f *flaky) first(id []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen[string(id)] {
		return false
	}
	f.seen[string(id)] = true
	return true
}

var errDropped = fmt.Errorf("%w: dropped by the test", client.ErrConnectionLost)

func (f *flaky) Upload(ctx context.Context, s client.SenderChunk, data []byte) error {
	if f.first(s.SndID[:]) {
		f.uploads.Add(1)
		return errDropped
	}
	return f.counted.Upload(ctx, s, data)
}

func (f *flaky) Download(ctx context.Context, r client.RecipientChunk) ([]byte, error) {
	if f.first(r.RcvID[:]) {
		f.downloads.Add(1)
		return nil, errDropped
	}
	return f.counted.Download(ctx, r)
}

func TestRetry(t *testing.T) {
	r := startRelay(t)
	fc := &flaky{counted: counted{Relay: dialRelay(t, r)}, seen: map[string]bool{}}
	plain := randBytes(t, 9*mib)
	d, _, st, _ := transfer(t, fc, r, plain)
	if fc.uploads.Load() != 6 || fc.downloads.Load() != 6 {
		t.Fatalf("%d uploads and %d downloads for 3 chunks failing once each", fc.uploads.Load(), fc.downloads.Load())
	}
	if got, err := readAll(st, "files/f1", d); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("file differs after retries: %v", err)
	}
	_, _, err := Send(testContext(t), fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{Retries: -1})
	if !errors.Is(err, client.ErrConnectionLost) {
		t.Fatalf("Send without retries: %v, want ErrConnectionLost", err)
	}
}

func TestRedirect(t *testing.T) {
	r := startRelay(t)
	fc := dialRelay(t, r)
	ctx := testContext(t)
	plain := randBytes(t, 9*mib)
	inner, _ := sendAll(t, fc, r, plain)
	outer, _, err := Redirect(ctx, fc, r.addr, inner, SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !outer.Redirect || outer.Class != wire.Class64K || len(outer.Chunks) != 1 {
		t.Fatalf("redirect: %v, class %s, %d chunks", outer.Redirect, outer.Class, len(outer.Chunks))
	}
	if _, _, err := Redirect(ctx, fc, r.addr, outer, SendOptions{}); !errors.Is(err, ErrInvalidDescription) {
		t.Fatalf("redirect to a redirect: %v", err)
	}
	b, err := outer.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	outer, err = UnmarshalDescription(b)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := newMemStore(t)
	if _, err := Follow(ctx, fc, inner, st, "files/r", ReceiveOptions{}); !errors.Is(err, ErrInvalidDescription) {
		t.Fatalf("Follow of a file description: %v", err)
	}
	got, err := Follow(ctx, fc, outer, st, "files/r", ReceiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := st.List("files/r"); len(keys) != 0 {
		t.Fatalf("Follow left %d records", len(keys))
	}
	if got.Digest != inner.Digest || !got.Key.Equal(inner.Key) || len(got.Chunks) != 3 {
		t.Fatal("followed description differs from the original")
	}
	if err := Receive(ctx, fc, got, st, "files/f", ReceiveOptions{}); err != nil {
		t.Fatal(err)
	}
	if data, err := readAll(st, "files/f", got); err != nil || !bytes.Equal(data, plain) {
		t.Fatalf("file through a redirect differs: %v", err)
	}

	// A redirect whose file is itself a redirect description is refused.
	b, err = outer.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	loop, _ := sendAll(t, fc, r, b)
	loop.Redirect = true
	if _, err := Follow(ctx, fc, loop, st, "files/loop", ReceiveOptions{}); !errors.Is(err, ErrInvalidDescription) {
		t.Fatalf("Follow of a redirect to a redirect: %v", err)
	}
}

// TestQueueAndFilesOneAddress: the address in a description is the relay's
// one address; its queue endpoint answers there too.
func TestQueueAndFilesOneAddress(t *testing.T) {
	r := startRelay(t)
	qc, err := client.Dial(testContext(t), r.addr, client.Options{})
	if err != nil {
		t.Fatalf("queue endpoint at the description's address: %v", err)
	}
	defer qc.Close()
	d, _, st, _ := transfer(t, dialRelay(t, r), r, randBytes(t, 1000))
	if d.Relay != r.addr {
		t.Fatal("description names another relay")
	}
	if _, err := readAll(st, "files/f1", d); err != nil {
		t.Fatal(err)
	}
}

// gated holds the download of one chunk until release is closed and
// counts the downloads started.
type gated struct {
	Relay
	hold    wire.ChunkID
	release chan struct{}
	started atomic.Int64
}

func (g *gated) Download(ctx context.Context, r client.RecipientChunk) ([]byte, error) {
	g.started.Add(1)
	if r.RcvID == g.hold {
		<-g.release
	}
	return g.Relay.Download(ctx, r)
}

// TestReceiveWindow: while the first chunk is slow to come, Receive
// downloads no more than InFlight+2 chunks ahead of the verification, so
// memory stays bounded whatever the file size.
func TestReceiveWindow(t *testing.T) {
	r := startRelay(t)
	fc := dialRelay(t, r)
	plain := randBytes(t, 22*mib)
	d, _ := sendAll(t, fc, r, plain)
	if len(d.Chunks) != 6 {
		t.Fatalf("%d chunks, want 6", len(d.Chunks))
	}
	g := &gated{Relay: fc, hold: d.Chunks[0].RcvID, release: make(chan struct{})}
	st, _ := newMemStore(t)
	errc := make(chan error, 1)
	go func() { errc <- Receive(testContext(t), g, d, st, "files/f1", ReceiveOptions{InFlight: 2}) }()
	const window = 2 + 2
	for deadline := time.Now().Add(scaled(10 * time.Second)); g.started.Load() < window && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for a download past the window
	if n := g.started.Load(); n != window {
		t.Errorf("%d downloads started while the first chunk was held, want %d", n, window)
	}
	close(g.release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(st, "files/f1", d); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("received file differs: %v", err)
	}
}
