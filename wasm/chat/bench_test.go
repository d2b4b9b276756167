//go:build !js

package chat

import (
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// fsBytes sums the sizes of the files under dir.
func fsBytes(t testing.TB, fsys hackpadfs.FS, dir string) (n int64, files int) {
	t.Helper()
	err := hackpadfs.WalkDir(fsys, dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, files
}

// BenchmarkStoragePerMessage sends b.N texts of 100 bytes and reports the
// bytes each side's storage grew by per message (records are encrypted:
// message record, index record, and the rewritten contact and connection
// records).
func BenchmarkStoragePerMessage(b *testing.B) {
	r := relaytest.Start(b)
	a := newUser(b, "Ann", "", r)
	u := newUser(b, "Ben", "", r)
	ab, ba := connect(b, a, u, false)
	beforeA, _ := fsBytes(b, a.fs, dataDir(a.id))
	beforeB, _ := fsBytes(b, u.fs, dataDir(u.id))
	text := strings.Repeat("x", 100)
	b.ResetTimer()
	for range b.N {
		if _, err := a.p.SendText(ctxT(b), ab, text); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, "all delivered", func() (bool, error) {
		msgs, err := a.p.Messages(ab, 0, 1)
		return len(msgs) == 1 && msgs[0].Status == StatusDelivered, err
	})
	waitFor(b, "all received", func() (bool, error) {
		c, err := u.p.Contact(ba)
		return c.NextSeq == uint64(b.N)+1, err
	})
	time.Sleep(100 * time.Millisecond)
	b.StopTimer()
	afterA, _ := fsBytes(b, a.fs, dataDir(a.id))
	afterB, _ := fsBytes(b, u.fs, dataDir(u.id))
	b.ReportMetric(float64(afterA-beforeA)/float64(b.N), "sender-B/msg")
	b.ReportMetric(float64(afterB-beforeB)/float64(b.N), "receiver-B/msg")
}
