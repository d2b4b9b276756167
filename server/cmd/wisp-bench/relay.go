package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

type relayResult struct {
	MsgsPerS         float64 `json:"msgs_per_s"`
	P50ms            float64 `json:"p50_ms"`
	P99ms            float64 `json:"p99_ms"`
	RSSBytes         int64   `json:"rss_bytes"`
	RelayCPUs        float64 `json:"relay_cpu_s"`
	BaselineMsgsPerS float64 `json:"baseline_msgs_per_s"`
	BaselineP50ms    float64 `json:"baseline_p50_ms"`
	BaselineP99ms    float64 `json:"baseline_p99_ms"`
	Ratio            float64 `json:"ratio"`
	Conns            int     `json:"conns"`
	Queues           int     `json:"queues"`
	Msgs             int     `json:"msgs"`
	Size             int     `json:"size"`
}

func percentile(l []time.Duration, p float64) float64 {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return float64(l[min(len(l)-1, int(float64(len(l))*p))].Microseconds()) / 1000
}

func runRelay(args []string) error {
	fs := flag.NewFlagSet("relay", flag.ExitOnError)
	var t target
	t.flags(fs)
	conns := fs.Int("conns", 100, "connections")
	queues := fs.Int("queues", 1000, "queues")
	msgs := fs.Int("msgs", 10, "messages per queue")
	size := fs.Int("size", wire.MaxBodySize, "message body size (16-16000; 16000 fills a 16 KiB block)")
	_ = fs.Parse(args)
	if *conns < 1 || *queues < 1 || *msgs < 1 || *size < 16 || *size > wire.MaxBodySize {
		return errors.New("need -conns, -queues, -msgs ≥ 1 and 16 ≤ -size ≤ 16000")
	}
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	addr, stop, err := t.start()
	if err != nil {
		return err
	}
	defer stop()
	res := relayResult{Conns: *conns, Queues: *queues, Msgs: *msgs, Size: *size}
	total := *queues * *msgs
	cpu0 := t.process.cpu()
	lat, elapsed, err := driveRelay(addr, *conns, *queues, *msgs, *size)
	if err != nil {
		return err
	}
	res.RelayCPUs = (t.process.cpu() - cpu0).Seconds()
	res.MsgsPerS = float64(total) / elapsed.Seconds()
	res.P50ms, res.P99ms = percentile(lat, 0.50), percentile(lat, 0.99)
	res.RSSBytes = t.process.rss()

	bare, baddr, err := startBare()
	if err != nil {
		return err
	}
	defer bare.stop()
	bps, blat, err := echoBaseline(baddr, *conns, total, *queues)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	res.BaselineMsgsPerS = bps
	res.BaselineP50ms, res.BaselineP99ms = percentile(blat, 0.50), percentile(blat, 0.99)
	res.Ratio = res.MsgsPerS / res.BaselineMsgsPerS

	fmt.Printf("%-28s %12s %10s %10s\n", "run", "msgs/s", "p50 ms", "p99 ms")
	fmt.Printf("%-28s %12.0f %10.2f %10.2f\n", "relay (SEND→OK→MSG→ACK)", res.MsgsPerS, res.P50ms, res.P99ms)
	fmt.Printf("%-28s %12.0f %10.2f %10.2f\n", "bare websocket echo", bps, res.BaselineP50ms, res.BaselineP99ms)
	fmt.Printf("conns=%d queues=%d msgs/queue=%d size=%d total=%d relay RSS=%.1f MiB relay CPU=%.2f s ratio=%.3f\n",
		*conns, *queues, *msgs, *size, total, float64(res.RSSBytes)/(1<<20), res.RelayCPUs, res.Ratio)
	return printJSON(res)
}

type benchQueue struct {
	sub    client.Subscription
	sndID  wire.QueueID
	sndKey ed25519.PrivateKey
	sender *client.Client
}

// driveRelay runs the end-to-end load and returns SEND→MSG latencies.
func driveRelay(addr wire.Address, nconns, nqueues, msgs, size int) ([]time.Duration, time.Duration, error) {
	ctx, cancel := timeout(10 * time.Minute)
	defer cancel()
	cs := make([]*client.Client, nconns)
	for i := range cs {
		c, err := client.Dial(ctx, addr, client.Options{EventBuffer: 4096})
		if err != nil {
			return nil, 0, err
		}
		defer c.Close()
		cs[i] = c
	}
	qs := make([]*benchQueue, nqueues)
	subs := make([][]client.Subscription, nconns)
	var setup errGroup
	for i := range qs {
		setup.Go(func() error {
			owner, sender := cs[i%nconns], cs[(i+1)%nconns]
			keys, err := client.NewRecipientKeys()
			if err != nil {
				return err
			}
			info, err := owner.New(ctx, keys, nil)
			if err != nil {
				return fmt.Errorf("NEW: %w", err)
			}
			_, sk, _ := ed25519.GenerateKey(rand.Reader)
			if err := sender.Secure(ctx, info.SndID, sk); err != nil {
				return fmt.Errorf("SKEY: %w", err)
			}
			qs[i] = &benchQueue{sub: info.Subscription(keys), sndID: info.SndID, sndKey: sk, sender: sender}
			return nil
		})
	}
	if err := setup.Wait(); err != nil {
		return nil, 0, err
	}
	for i, q := range qs {
		subs[i%nconns] = append(subs[i%nconns], q.sub)
	}
	byID := make(map[wire.QueueID]client.Subscription, nqueues)
	for i, c := range cs {
		for _, err := range c.Subscribe(ctx, subs[i]...) {
			if err != nil {
				return nil, 0, fmt.Errorf("SUB: %w", err)
			}
		}
		for _, s := range subs[i] {
			byID[s.RcvID] = s
		}
	}

	total := int64(nqueues * msgs)
	var received atomic.Int64
	done := make(chan struct{})
	lats := make([][]time.Duration, nconns)
	var recv sync.WaitGroup
	for i, c := range cs {
		recv.Go(func() {
			for {
				select {
				case ev := <-c.Events():
					if ev.Kind != client.EventMessage || ev.Err != nil || len(ev.Message.Body) < 8 {
						continue
					}
					sent := time.Unix(0, int64(binary.BigEndian.Uint64(ev.Message.Body)))
					lats[i] = append(lats[i], time.Since(sent))
					go func() { _ = c.Ack(ctx, byID[ev.RcvID], ev.Message.ID) }()
					if received.Add(1) == total {
						close(done)
					}
				case <-done:
					return
				case <-ctx.Done():
					return
				}
			}
		})
	}
	start := time.Now()
	var send errGroup
	for _, q := range qs {
		send.Go(func() error {
			for range msgs {
				body := make([]byte, size)
				for attempt := 0; ; attempt++ {
					binary.BigEndian.PutUint64(body, uint64(time.Now().UnixNano()))
					err := q.sender.Send(ctx, q.sndID, q.sndKey, body)
					if errors.Is(err, wire.CodeQuota) && attempt < 1000 {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					if err != nil {
						return fmt.Errorf("SEND: %w", err)
					}
					break
				}
			}
			return nil
		})
	}
	if err := send.Wait(); err != nil {
		return nil, 0, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, 0, fmt.Errorf("only %d of %d messages delivered", received.Load(), total)
	}
	elapsed := time.Since(start)
	recv.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return all, elapsed, nil
}

// errGroup runs functions concurrently and keeps the first error.
type errGroup struct {
	wg   sync.WaitGroup
	once sync.Once
	err  error
}

func (g *errGroup) Go(f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil {
			g.once.Do(func() { g.err = err })
		}
	})
}

func (g *errGroup) Wait() error {
	g.wg.Wait()
	return g.err
}

var _ = context.Background
