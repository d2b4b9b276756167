package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wisp-chat/wisp/server/relay"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// heapSampler records the largest live heap (after a collection) seen
// while it runs.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	base uint64
	peak uint64
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{}), base: liveHeap()}
	go func() {
		defer close(h.done)
		for {
			h.peak = max(h.peak, liveHeap())
			select {
			case <-h.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return h
}

// growth stops sampling and returns the peak growth over the start.
func (h *heapSampler) growth() uint64 {
	close(h.stop)
	<-h.done
	if h.peak < h.base {
		return 0
	}
	return h.peak - h.base
}

// TestGetFloodBoundedMemory: connections that never read and flood GET
// on queues that hold a message cost the relay a bounded amount of
// memory, are dropped once their output stays full for WriteTimeout, and
// an honest client keeps being served meanwhile.
func TestGetFloodBoundedMemory(t *testing.T) {
	const (
		attackers       = 3
		queuesPerAttack = 16
		blocksPerAttack = 60 // ~150 GETs per block: 9,000 GETs each
		// Before the byte bound, 3 × 9,000 GETs held ~16 KB each.
		maxGrowth = 48 << 20
	)
	r := startRelay(t, func(c *relay.Config) { c.Limits.WriteTimeout = scaled(time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), scaled(2*time.Minute))
	defer cancel()
	setup := dial(t, r)
	type target struct {
		q    *queue
		keys client.RecipientKeys
	}
	targets := make([][]target, attackers)
	for a := range targets {
		for range queuesPerAttack {
			q := newQueue(t, setup, true)
			if err := setup.Send(ctx, q.info.SndID, q.sndKey, make([]byte, wire.MaxBodySize)); err != nil {
				t.Fatal(err)
			}
			targets[a] = append(targets[a], target{q: q, keys: q.keys})
		}
	}
	honest := dial(t, r)
	hq := newQueue(t, honest, true)
	honest.Subscribe(ctx, hq.sub)

	heap := sampleHeap()
	var wg sync.WaitGroup
	for a := range attackers {
		raw := dialRaw(t, r)
		var blocks [][]byte
		for range blocksPerAttack {
			var b wire.BlockBuilder
			for i := 0; ; i++ {
				tg := targets[a][i%queuesPerAttack]
				if !b.Add(raw.tx(tg.q.info.RcvID[:], wire.Command{Kind: wire.CmdGET}, tg.keys.Auth)) {
					break
				}
			}
			block, err := raw.sess.Seal(b.Payload())
			if err != nil {
				t.Fatal(err)
			}
			blocks = append(blocks, block)
		}
		wg.Go(func() {
			wctx, cancel := context.WithTimeout(context.Background(), scaled(20*time.Second))
			defer cancel()
			for _, block := range blocks {
				if raw.ws.Write(wctx, websocket.MessageBinary, block) != nil {
					return // dropped by the relay
				}
			}
		})
	}

	// The honest client's SEND→MSG latency while the flood runs.
	var lat []time.Duration
	for i := range 30 {
		start := time.Now()
		if err := honest.Send(ctx, hq.info.SndID, hq.sndKey, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		ev := nextEvent(t, honest, client.EventMessage)
		lat = append(lat, time.Since(start))
		if err := honest.Ack(ctx, hq.sub, ev.Message.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Every attacker is dropped: only the setup and honest sessions stay.
	waitFor(t, "attackers dropped", func() bool { return r.srv.Connections() == 2 })
	wg.Wait()
	grew := heap.growth()
	slices.Sort(lat)
	t.Logf("GET flood (%d non-reading connections × %d GETs): live heap grew %.1f MiB; honest SEND→MSG median %v, p95 %v, max %v",
		attackers, blocksPerAttack*150, float64(grew)/(1<<20), lat[len(lat)/2], lat[len(lat)*95/100], lat[len(lat)-1])
	if grew > maxGrowth {
		t.Fatalf("live heap grew %d MiB under the GET flood, bound %d MiB", grew>>20, maxGrowth>>20)
	}
	stillServing(t, r)
}

// TestSubscribeFloodBoundedOutput: subscribing many queues that hold a
// message pushes them all to a client that reads, while the relay keeps
// at most MaxPendingBytes waiting for it (the rest are deferred until
// there is room); a client that subscribes them all and never reads
// costs a bounded amount of memory: what does not fit in the socket
// buffers is not produced.
func TestSubscribeFloodBoundedOutput(t *testing.T) {
	const (
		queues    = 1000
		maxGrowth = 12 << 20 // before the byte bound: ~32 MiB of MSGs
	)
	var m *relay.Metrics
	r := startRelay(t, func(c *relay.Config) {
		c.Limits.WriteTimeout = scaled(time.Second)
		c.Limits.NewPerMinute = queues
		c.Limits.NewPerMinuteAddr = 0
		var err error
		if m, err = relay.NewMetrics(prometheus.NewRegistry(), func() (int64, int64, error) { return 0, 0, nil }); err != nil {
			t.Fatal(err)
		}
		c.Metrics = m
	})
	ctx, cancel := context.WithTimeout(context.Background(), scaled(2*time.Minute))
	defer cancel()
	setup := dial(t, r)
	subs := make([]client.Subscription, queues)
	want := make(map[string]bool, queues)
	var setupWG sync.WaitGroup
	for w := range 8 {
		setupWG.Go(func() {
			for i := w; i < queues; i += 8 {
				q, err := tryNewQueue(ctx, setup, true)
				if err != nil {
					t.Error(err)
					return
				}
				body := make([]byte, wire.MaxBodySize)
				copy(body, fmt.Sprintf("message %d", i))
				if err := setup.Send(ctx, q.info.SndID, q.sndKey, body); err != nil {
					t.Error(err)
					return
				}
				subs[i] = q.sub
			}
		})
	}
	setupWG.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i := range queues {
		body := make([]byte, 16)
		copy(body, fmt.Sprintf("message %d", i))
		want[string(body)] = true
	}

	// A reading client gets every message, each once, with none acked.
	reader := dial(t, r)
	subErrs := make(chan []error, 1)
	go func() { subErrs <- reader.Subscribe(ctx, subs...) }()
	got := make(map[string]bool, queues)
	for len(got) < queues {
		ev := nextEvent(t, reader, client.EventMessage)
		k := string(ev.Message.Body[:16])
		if !want[k] || got[k] {
			t.Fatalf("unexpected or repeated message %q", k)
		}
		got[k] = true
	}
	for _, err := range <-subErrs {
		if err != nil {
			t.Fatal(err)
		}
	}
	_ = reader.Close()

	// A client that subscribes them all and reads nothing.
	heap := sampleHeap()
	raw := dialRaw(t, r)
	var b wire.BlockBuilder
	var blocks [][]byte
	for _, s := range subs {
		tx := raw.tx(s.RcvID[:], wire.Command{Kind: wire.CmdSUB}, s.Auth)
		if !b.Add(tx) {
			blocks = append(blocks, bytes.Clone(b.Payload()))
			b = wire.BlockBuilder{}
			b.Add(tx)
		}
	}
	blocks = append(blocks, bytes.Clone(b.Payload()))
	for _, p := range blocks {
		raw.sendPayload(p)
	}
	// Either the socket buffers took every message, or the relay's writes
	// blocked and it dropped the connection after WriteTimeout.
	waitFor(t, "every MSG written or the subscriber dropped", func() bool {
		return relay.Delivered(m) == 2*queues || r.srv.Connections() == 1
	})
	grew := heap.growth()
	t.Logf("%d subscriptions with a 16 KB message each, never read: live heap grew %.1f MiB", queues, float64(grew)/(1<<20))
	if grew > maxGrowth {
		t.Fatalf("live heap grew %.1f MiB, bound %d MiB", float64(grew)/(1<<20), maxGrowth>>20)
	}
	stillServing(t, r)
}
