//go:build !js

package chat

import (
	"fmt"
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

// BenchmarkGroupDelivered measures, in groups of 10, 50 and 100 members
// on three in-process relays, the time from SendGroupText until every
// other member's device stored the message (the author's message shows
// "delivered" to all), and reports the relay SENDs it cost per member
// (the message, and the member's delivery receipt).
func BenchmarkGroupDelivered(b *testing.B) {
	for _, n := range []int{2, 10, 50, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			ms, relays := buildGroupRelays(b, n)
			owner := ms[0]
			sends := func() int {
				total := 0
				for _, r := range relays {
					total += r.Sends()
				}
				return total
			}
			before := sends()
			b.ResetTimer()
			for i := range b.N {
				msg, err := owner.u.p.SendGroupText(ctxT(b), owner.gid, fmt.Sprintf("bench %d", i))
				if err != nil {
					b.Fatal(err)
				}
				deadline := time.Now().Add(60 * time.Second)
				for {
					owner.u.p.mu.Lock()
					m, err := owner.u.p.getMessage(owner.gid, msg.Seq)
					owner.u.p.mu.Unlock()
					if err != nil {
						b.Fatal(err)
					}
					if m.Status == StatusDelivered && len(m.DeliveredTo) == n-1 {
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("delivered to %d of %d", len(m.DeliveredTo), n-1)
					}
					time.Sleep(200 * time.Microsecond)
				}
			}
			b.StopTimer()
			time.Sleep(100 * time.Millisecond) // the last receipts
			b.ReportMetric(float64(sends()-before)/float64(b.N*(n-1)), "SENDs/member/msg")
		})
	}
}
