//go:build !js

package files

import (
	"bytes"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/wasm/store"
)

// BenchmarkSendReceive sends a 32 MiB file through a loopback relay,
// receives it into an in-memory encrypted store and reads it back with
// Open. MB/s is of the file size for the whole round; send-MB/s,
// receive-MB/s (download, store, verify, acknowledge) and open-MB/s
// (verify again and read) are the phases.
func BenchmarkSendReceive(b *testing.B) {
	r := startRelay(b)
	fc := dialRelay(b, r)
	ctx := testContext(b)
	plain := randBytes(b, 32*mib)
	b.SetBytes(int64(len(plain)))
	var send, recv, open time.Duration
	for b.Loop() {
		t0 := time.Now()
		d, _, err := Send(ctx, fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		st, _ := newMemStore(b)
		dir := store.Key("files/bench")
		if err := Receive(ctx, fc, d, st, dir, ReceiveOptions{}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		n, err := readCount(st, dir, d)
		if err != nil || n != int64(len(plain)) {
			b.Fatalf("read back %d bytes: %v", n, err)
		}
		send, recv, open = send+t1.Sub(t0), recv+t2.Sub(t1), open+time.Since(t2)
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * float64(len(plain)) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(send), "send-MB/s")
	b.ReportMetric(mbps(recv), "receive-MB/s")
	b.ReportMetric(mbps(open), "open-MB/s")
}

// BenchmarkSendMany sends a 20 MiB file to 10 recipients through a
// loopback relay and reports the chunk bytes uploaded per Send
// (uploaded-B/op: the same as for one recipient, 6 chunks of 4 MiB) and
// the FNEW recipients asked for (fnew-recipients/op: 10 per chunk).
func BenchmarkSendMany(b *testing.B) {
	r := startRelay(b)
	fc := &counted{Relay: dialRelay(b, r)}
	ctx := testContext(b)
	plain := randBytes(b, 20*mib)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		ds, st, err := SendMany(ctx, fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{Recipients: 10})
		if err != nil || len(ds) != 10 {
			b.Fatal(err)
		}
		if err := DeleteSent(ctx, fc, st); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(fc.uploadedBytes.Load())/float64(b.N), "uploaded-B/op")
	b.ReportMetric(float64(fc.fnewRecipients.Load())/float64(b.N), "fnew-recipients/op")
}
