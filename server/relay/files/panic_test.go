package files_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/wire"
)

// corruptBranchPages overwrites the page ID in the header of every branch
// page of a live bbolt file, as random bytes on a branch page do: bbolt
// panics on the next read that walks through one. The relay keeps the
// file mapped, so it sees the change at once.
func corruptBranchPages(t *testing.T, path string) int {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Page header: id (8) ‖ flags (2) ‖ count (2) ‖ overflow (4); the meta
	// page's body starts with magic (4) ‖ version (4) ‖ page size (4).
	ps := int(binary.LittleEndian.Uint32(b[16+8:]))
	if ps < 512 || len(b)%ps != 0 {
		t.Fatalf("page size %d for a file of %d bytes", ps, len(b))
	}
	n := 0
	for off := 0; off+ps <= len(b); off += ps {
		flags := binary.LittleEndian.Uint16(b[off+8:])
		overflow := int(binary.LittleEndian.Uint32(b[off+12:]))
		if flags == 0x01 { // branch page
			if _, err := f.WriteAt(binary.LittleEndian.AppendUint64(nil, 0xdeadbeef), int64(off)); err != nil {
				t.Fatal(err)
			}
			n++
		}
		off += overflow * ps
	}
	return n
}

// logRecorder keeps what the relay logs.
type logRecorder struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	base slog.Handler
}

func newLogRecorder() *logRecorder {
	r := &logRecorder{}
	r.base = slog.NewTextHandler(lockedWriter{r}, nil)
	return r
}

type lockedWriter struct{ r *logRecorder }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.buf.Write(p)
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

func (r *logRecorder) Enabled(ctx context.Context, l slog.Level) bool { return r.base.Enabled(ctx, l) }
func (r *logRecorder) Handle(ctx context.Context, rec slog.Record) error {
	return r.base.Handle(ctx, rec)
}
func (r *logRecorder) WithAttrs(a []slog.Attr) slog.Handler { return r.base.WithAttrs(a) }
func (r *logRecorder) WithGroup(g string) slog.Handler      { return r.base.WithGroup(g) }

// TestStorePanicIsInternal (issue 11, item 5): a panic in the storage
// layer (here bbolt on a corrupt branch page) answers that command with
// ERR INTERNAL; the session and the process go on, the sweep reports an
// error, and the log names no ID. Before, the first such command killed
// the process.
func TestStorePanicIsInternal(t *testing.T) {
	logs := newLogRecorder()
	r := startRelay(t, 64*mib, func(c *files.Config) { c.Logger = slog.New(logs) })
	c := dial(t, r)
	// 128 recipient records fill several pages, and six chunk records
	// that list 128 recipients each fill more than bbolt keeps in one
	// leaf: both buckets get a branch.
	snd, rcpts, err := c.CreateChunk(ctxT(t), wire.Class64K, wire.MaxChunkRecipients, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, _, err := c.CreateChunk(ctxT(t), wire.Class64K, wire.MaxChunkRecipients, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := corruptBranchPages(t, filepath.Join(r.dir, "chunks.db")); n == 0 {
		t.Fatal("no branch page to corrupt")
	}
	rw := dialRaw(t, r)
	for _, kind := range []wire.FileKind{wire.CmdFGET, wire.CmdFACK} {
		rw.send(wire.ClassControl, wire.FileTransmission{EntityID: rcpts[0].RcvID[:], Command: wire.FileCommand{Kind: kind}}, rcpts[0].Key)
		if tr := rw.expectErr(wire.CodeInternal); !bytes.Equal(tr.EntityID, rcpts[0].RcvID[:]) {
			t.Fatalf("%s: entity ID not echoed", kind)
		}
	}
	rw.send(wire.ClassControl, wire.FileTransmission{Command: wire.FileCommand{Kind: wire.CmdFPING}}, nil)
	if tr, _ := rw.recv(); tr.Command.Kind != wire.AnsFPONG {
		t.Fatalf("after the panics: %s", tr.Command.Kind)
	}
	// The sweep's deletions panic while they hold a chunk's lock: it must
	// be released each time, or the second sweep would hang on it.
	for i := range 2 {
		done := make(chan error, 1)
		go func() {
			_, err := r.srv.Sweep(time.Now().Add(100 * time.Hour))
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("sweep %d over a corrupt store reported no error", i)
			}
		case <-time.After(scaled(20 * time.Second)):
			t.Fatalf("sweep %d hangs: a chunk lock was not released", i)
		}
	}
	for range 2 {
		rw.send(wire.ClassControl, wire.FileTransmission{EntityID: snd.SndID[:], Command: wire.FileCommand{Kind: wire.CmdFDEL}}, snd.Key)
		rw.expectErr(wire.CodeInternal)
	}
	out := logs.String()
	if !bytes.Contains([]byte(out), []byte("file command panicked")) {
		t.Fatalf("no log of the panic: %s", out)
	}
	for _, id := range [][]byte{snd.SndID[:], rcpts[0].RcvID[:]} {
		for _, form := range []string{string(id), fmtHex(id)} {
			if bytes.Contains([]byte(out), []byte(form)) {
				t.Fatal("an ID in the log")
			}
		}
	}
}

func fmtHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
