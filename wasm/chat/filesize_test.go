//go:build !js

package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// progressLog records a transfer's progress calls.
type progressLog struct {
	mu    sync.Mutex
	calls [][2]int64
}

func (l *progressLog) add(done, total int64) {
	l.mu.Lock()
	l.calls = append(l.calls, [2]int64{done, total})
	l.mu.Unlock()
}

// check: every total is the file's size, done never goes back, and the
// last call (when complete) is the whole file.
func (l *progressLog) check(t *testing.T, what string, size int64, complete bool) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.calls) == 0 {
		t.Fatalf("%s: no progress", what)
	}
	var prev int64
	for _, c := range l.calls {
		if c[1] != size || c[0] < prev || c[0] > size {
			t.Fatalf("%s: progress %d of %d after %d; the file has %d bytes", what, c[0], c[1], prev, size)
		}
		prev = c[0]
	}
	if last := l.calls[len(l.calls)-1]; complete && last[0] != size {
		t.Errorf("%s: ended at %d of %d", what, last[0], last[1])
	}
}

// TestTransferProgressInFileBytes: uploads and downloads report the file's
// own size as their total (not its padded chunks), and an interrupted
// download's message says how much of the file is already stored, which
// is where the resumed download starts.
func TestTransferProgressInFileBytes(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	a := newUser(t, "Kim", "", r1)
	b := newUser(t, "Lou", "", r2)
	ab, ba := connect(t, a, b, false)
	// Six 4 MiB chunks, 24 MiB on the relay, for a file of 21 MiB.
	data := make([]byte, 21<<20+12345)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	var up progressLog
	if _, err := a.p.SendFile(ctxT(t), ab, FileMeta{Name: "big.bin", Size: size}, bytes.NewReader(data), up.add); err != nil {
		t.Fatal(err)
	}
	up.check(t, "upload", size, true)

	in := awaitOneMessage(t, b, ba)
	if in.File == nil || in.File.Stored != 0 {
		t.Fatalf("received %+v", in.File)
	}
	// Interrupted after the first chunk is stored (as by a reload).
	ctx, cancel := context.WithCancel(ctxT(t))
	var first progressLog
	err := b.p.DownloadFile(ctx, ba, in.Seq, func(done, total int64) {
		first.add(done, total)
		if done > 0 {
			cancel()
		}
	})
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted download: %v", err)
	}
	first.check(t, "interrupted download", size, false)
	msgs, err := b.p.Messages(ba, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	f := msgs[0].File
	b.p.mu.Lock()
	chunks, _ := b.p.st.List(fileDir(ba, in.Seq).Join("chunks"))
	b.p.mu.Unlock()
	if f.State == FileDownloaded || f.Stored <= 0 || f.Stored >= size || f.Stored != plainBytes(int64(len(chunks)), 6, size) {
		t.Fatalf("after the interruption: %s, %d of %d bytes stored (%d chunks of 6)", f.State, f.Stored, size, len(chunks))
	}

	var resumed progressLog
	if err := b.p.DownloadFile(ctxT(t), ba, in.Seq, resumed.add); err != nil {
		t.Fatal(err)
	}
	resumed.check(t, "resumed download", size, true)
	if start := resumed.calls[0][0]; start != f.Stored {
		t.Errorf("the resumed download starts at %d, the message said %d", start, f.Stored)
	}
	msgs, _ = b.p.Messages(ba, 0, 10)
	if f := msgs[0].File; f.State != FileDownloaded || f.Stored != 0 {
		t.Errorf("downloaded: %+v", f)
	}
	rd, _, err := b.p.OpenFile(ba, in.Seq)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("downloaded %d bytes (%v)", len(got), err)
	}
}

func TestPlainBytes(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct{ done, total, size, want int64 }{
		{0, 32 * mib, 30 * mib, 0},
		{4 * mib, 32 * mib, 30 * mib, 30 * mib / 8},
		{32 * mib, 32 * mib, 30 * mib, 30 * mib},
		{33 * mib, 32 * mib, 30 * mib, 30 * mib},
		{0, 0, 0, 0},
		{64 << 10, 64 << 10, 0, 0},
		{1, 6, 21 * mib, 21 * mib / 6},
		{1 << 30, 1<<30 + 4*mib, 1 << 30, (1 << 30) * (1 << 30) / (1<<30 + 4*mib)},
	} {
		if got := plainBytes(tc.done, tc.total, tc.size); got != tc.want {
			t.Errorf("plainBytes(%d, %d, %d) = %d, want %d", tc.done, tc.total, tc.size, got, tc.want)
		}
	}
}
