//go:build !js

package agent

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// BenchmarkThroughput: b.N messages from a to b through two relays (a sends
// to b's relay), queued as fast as Send returns, until b stored them all.
// Reports msgs/s end to end.
func BenchmarkThroughput(b *testing.B) {
	ra, rb := relaytest.Start(b), relaytest.Start(b)
	pa, pb := newPeer(b), newPeer(b)
	ca, cb := connect(b, pa, pb, ra, rb)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := pa.agent.Send(ctxT(b), ca, fmt.Appendf(nil, "message %d", i)); err != nil {
			b.Fatal(err)
		}
	}
	pb.ev.wait(b, "delivery", time.Minute, func() bool { return len(pb.ev.received[cb]) == b.N })
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkLatency: one message at a time from a to b; reports the median
// and p99 time from Send to b's Received.
func BenchmarkLatency(b *testing.B) {
	ra, rb := relaytest.Start(b), relaytest.Start(b)
	pa, pb := newPeer(b), newPeer(b)
	ca, cb := connect(b, pa, pb, ra, rb)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := pa.agent.Send(ctxT(b), ca, fmt.Appendf(nil, "ping %d", i)); err != nil {
			b.Fatal(err)
		}
		pb.ev.wait(b, "delivery", time.Minute, func() bool { return len(pb.ev.received[cb]) == i+1 })
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms-p99")
}
