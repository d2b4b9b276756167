package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// floodResult is the flood mode's JSON line. Times are seconds after the
// flood started; -1 means "did not happen within -duration".
type floodResult struct {
	Attackers int     `json:"attackers"`
	Queues    int     `json:"queues"` // per attacker
	Gets      int     `json:"gets"`   // per attacker
	DurationS float64 `json:"duration_s"`

	RSSBeforeBytes int64   `json:"rss_before_bytes"`
	RSSPeakBytes   int64   `json:"rss_peak_bytes"`
	RSSGrowthBytes int64   `json:"rss_growth_bytes"`
	RSSEndBytes    int64   `json:"rss_end_bytes"`
	RSSPeakS       float64 `json:"rss_peak_s"`
	RSSSamples     int     `json:"rss_samples"`
	RelayCPUs      float64 `json:"relay_cpu_s"`

	RoundTrips int     `json:"round_trips"`
	Failures   int     `json:"round_trip_failures"`
	FirstError string  `json:"first_failure,omitempty"` // what the first failed round trip met
	P50ms      float64 `json:"p50_ms"`
	P95ms      float64 `json:"p95_ms"`
	Maxms      float64 `json:"max_ms"`

	GetsWritten      int64     `json:"gets_written"`       // over all attackers
	AttackersDone    int       `json:"attackers_done"`     // wrote all their GETs
	AttackersDropped int       `json:"attackers_dropped"`  // the relay closed them
	DoneS            []float64 `json:"attacker_done_s"`    // when each wrote its last GET
	DropS            []float64 `json:"attacker_drop_s"`    // when each was dropped
	FirstDropS       float64   `json:"first_drop_s"`       // -1: none dropped
	LastDropS        float64   `json:"last_drop_s"`        // -1: not all dropped
	SourceAddrs      bool      `json:"source_addresses"`   // one loopback address per attacker
	StillServes      bool      `json:"relay_still_serves"` // a PING after the flood got PONG
}

// floodTarget is one queue an attacker GETs: its recipient ID and key.
type floodTarget struct {
	rcvID wire.QueueID
	auth  ed25519.PrivateKey
}

// attacker is a raw session that writes GET blocks and never reads.
type attacker struct {
	ws     *websocket.Conn
	tcp    net.Conn
	blocks [][]byte
	gets   []int // GETs in each block

	written atomic.Int64 // GETs written so far
	doneAt  atomic.Int64 // ns after the start when all were written, 0: not yet
	dropAt  atomic.Int64 // ns after the start when dropped, 0: not (yet)
}

func (a *attacker) dropped(since time.Time) {
	a.dropAt.CompareAndSwap(0, max(1, int64(time.Since(since))))
}

func seconds(ns int64) float64 {
	if ns == 0 {
		return -1
	}
	return time.Duration(ns).Seconds()
}

// runFlood measures the relay under a GET flood from connections that
// never read (issue 11, item 1).
func runFlood(args []string) error {
	fs := flag.NewFlagSet("flood", flag.ExitOnError)
	var t target
	t.flags(fs)
	attackers := fs.Int("attackers", 3, "connections that flood GET and never read")
	queues := fs.Int("queues", 16, "queues per attacker, each holding one 16,000-byte message")
	gets := fs.Int("gets", 9000, "GETs each attacker writes, cycling over its queues")
	duration := fs.Duration("duration", 15*time.Second, "how long the flood and the honest round trips last")
	_ = fs.Parse(args)
	if *attackers < 1 || *attackers > 200 || *queues < 1 || *queues > 10000 || *gets < 1 || *gets > 1000000 ||
		*duration < time.Second || *duration > 5*time.Minute {
		return errors.New("need 1 ≤ -attackers ≤ 200, 1 ≤ -queues ≤ 10000, 1 ≤ -gets ≤ 1000000 and 1s ≤ -duration ≤ 5m")
	}
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	addr, stop, err := t.start()
	if err != nil {
		return err
	}
	defer stop()
	res, err := flood(addr, t.process, *attackers, *queues, *gets, *duration)
	if err != nil {
		return err
	}

	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Printf("GET flood: %d attackers × %d GETs over %d queues each (16,000-byte messages), %v\n",
		res.Attackers, res.Gets, res.Queues, *duration)
	fmt.Printf("%-34s %10.1f MiB\n", "relay RSS before", mib(res.RSSBeforeBytes))
	fmt.Printf("%-34s %10.1f MiB (at %.1f s)\n", "relay RSS peak", mib(res.RSSPeakBytes), res.RSSPeakS)
	fmt.Printf("%-34s %10.1f MiB\n", "relay RSS growth", mib(res.RSSGrowthBytes))
	fmt.Printf("%-34s %10.1f MiB\n", "relay RSS at the end", mib(res.RSSEndBytes))
	fmt.Printf("%-34s %10d (%d failed)\n", "honest SEND→MSG round trips", res.RoundTrips, res.Failures)
	if res.FirstError != "" {
		fmt.Printf("first failure: %s\n", res.FirstError)
	}
	fmt.Printf("%-34s %10.2f / %.2f / %.2f ms\n", "honest latency p50 / p95 / max", res.P50ms, res.P95ms, res.Maxms)
	fmt.Printf("%-34s %10d of %d\n", "GETs written", res.GetsWritten, int64(res.Attackers)*int64(res.Gets))
	for i := range res.DropS {
		fmt.Printf("attacker %d: wrote all at %6.2f s, dropped at %6.2f s (-1: no)\n", i, res.DoneS[i], res.DropS[i])
	}
	fmt.Printf("relay CPU %.2f s, still serving: %v\n", res.RelayCPUs, res.StillServes)
	return printJSON(res)
}

func flood(addr wire.Address, proc *child, nAttackers, nQueues, nGets int, duration time.Duration) (*floodResult, error) {
	ctx, cancel := timeout(duration + 5*time.Minute)
	defer cancel()
	res := &floodResult{Attackers: nAttackers, Queues: nQueues, Gets: nGets, DurationS: duration.Seconds()}

	// Each attacker (its setup and its flooding session) comes from its own
	// loopback address, as separate attackers would: the relay's NEW budget
	// per source address then applies to each alone.
	sources := make([]*net.TCPAddr, nAttackers)
	if ip := net.ParseIP(addr.Host); ip != nil && ip.To4() != nil && ip.IsLoopback() && nAttackers <= 250 {
		res.SourceAddrs = true
		for a := range sources {
			sources[a] = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+a))}
		}
		useSourceAddresses()
	}

	// Setup: every attacker's queues, each holding one full message.
	targets := make([][]floodTarget, nAttackers)
	for a := range targets {
		setup, err := client.Dial(withSource(ctx, sources[a]), addr, client.Options{})
		if err != nil {
			return nil, fmt.Errorf("setup dial: %w", err)
		}
		targets[a] = make([]floodTarget, nQueues)
		body := make([]byte, wire.MaxBodySize)
		err = bounded(nQueues, 16, func(i int) error {
			keys, err := client.NewRecipientKeys()
			if err != nil {
				return err
			}
			info, err := setup.New(ctx, keys, nil)
			if err != nil {
				return fmt.Errorf("NEW (queue %d of attacker %d): %w", i, a, err)
			}
			_, sk, _ := ed25519.GenerateKey(rand.Reader)
			if err := setup.Secure(ctx, info.SndID, sk); err != nil {
				return fmt.Errorf("SKEY: %w", err)
			}
			if err := setup.Send(ctx, info.SndID, sk, body); err != nil {
				return fmt.Errorf("SEND: %w", err)
			}
			targets[a][i] = floodTarget{rcvID: info.RcvID, auth: keys.Auth}
			return nil
		})
		_ = setup.Close()
		if err != nil {
			return nil, err
		}
	}

	// The honest client: one queue, subscribed, one warm-up round trip.
	honest, err := client.Dial(ctx, addr, client.Options{EventBuffer: 16})
	if err != nil {
		return nil, fmt.Errorf("honest dial: %w", err)
	}
	defer honest.Close()
	keys, err := client.NewRecipientKeys()
	if err != nil {
		return nil, err
	}
	info, err := honest.New(ctx, keys, nil)
	if err != nil {
		return nil, fmt.Errorf("honest NEW: %w", err)
	}
	_, sndKey, _ := ed25519.GenerateKey(rand.Reader)
	if err := honest.Secure(ctx, info.SndID, sndKey); err != nil {
		return nil, fmt.Errorf("honest SKEY: %w", err)
	}
	sub := info.Subscription(keys)
	for _, err := range honest.Subscribe(ctx, sub) {
		if err != nil {
			return nil, fmt.Errorf("honest SUB: %w", err)
		}
	}
	var seq uint64
	roundTrip := func(limit time.Duration) (time.Duration, error) {
		rctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		seq++
		body := binary.BigEndian.AppendUint64(nil, seq)
		start := time.Now()
		if err := honest.Send(rctx, info.SndID, sndKey, body); err != nil {
			return 0, fmt.Errorf("SEND: %w", err)
		}
		for {
			select {
			case ev, ok := <-honest.Events():
				if !ok {
					return 0, errors.New("honest client closed")
				}
				if ev.Kind != client.EventMessage || ev.Err != nil {
					continue
				}
				lat := time.Since(start)
				if err := honest.Ack(rctx, sub, ev.Message.ID); err != nil {
					return 0, fmt.Errorf("ACK: %w", err)
				}
				// A late MSG of an earlier, timed-out round trip is
				// acknowledged and skipped.
				if len(ev.Message.Body) == 8 && binary.BigEndian.Uint64(ev.Message.Body) == seq {
					return lat, nil
				}
			case <-rctx.Done():
				return 0, fmt.Errorf("no MSG within %v", limit)
			}
		}
	}
	if _, err := roundTrip(10 * time.Second); err != nil {
		return nil, fmt.Errorf("honest warm-up: %w", err)
	}

	// The attackers: sessions whose GET blocks are all sealed in advance,
	// so they write as fast as the relay takes them.
	as := make([]*attacker, nAttackers)
	for a := range as {
		at, sess, err := dialRaw(ctx, addr, sources[a])
		if err != nil {
			return nil, fmt.Errorf("attacker dial: %w", err)
		}
		defer at.ws.CloseNow()
		as[a] = at
		var b wire.BlockBuilder
		var corr uint64
		for g := 0; g < nGets; {
			b.Reset()
			n := 0
			for g < nGets {
				tg := targets[a][g%nQueues]
				corr++
				tx := wire.Transmission{CorrID: binary.BigEndian.AppendUint64(nil, corr), EntityID: tg.rcvID[:], Command: wire.Command{Kind: wire.CmdGET}}
				raw, err := tx.Sign(sess.ID, tg.auth)
				if err != nil {
					return nil, err
				}
				if !b.Add(raw) {
					corr-- // goes first in the next block
					break
				}
				g, n = g+1, n+1
			}
			if n == 0 {
				return nil, errors.New("a GET does not fit in a block")
			}
			// Seal copies the payload (which aliases the builder).
			block, err := sess.Seal(b.Payload())
			if err != nil {
				return nil, err
			}
			at.blocks, at.gets = append(at.blocks, block), append(at.gets, n)
		}
	}

	// The flood. The sampler reads the relay's RSS and each attacker's TCP
	// state every 100 ms; the attackers write until done, dropped, or the
	// end of -duration; the honest client makes round trips meanwhile.
	res.RSSBeforeBytes = proc.rss()
	cpu0 := proc.cpu()
	start := time.Now()
	end := start.Add(duration)
	actx, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	var wg sync.WaitGroup
	for _, at := range as {
		wg.Go(func() {
			for i, block := range at.blocks {
				if err := at.ws.Write(actx, websocket.MessageBinary, block); err != nil {
					if actx.Err() == nil {
						at.dropped(start)
					}
					return
				}
				at.written.Add(int64(at.gets[i]))
			}
			at.doneAt.Store(max(1, int64(time.Since(start))))
		})
	}
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			now := time.Now()
			if r := proc.rss(); r > 0 {
				res.RSSSamples++
				if r > res.RSSPeakBytes {
					res.RSSPeakBytes, res.RSSPeakS = r, now.Sub(start).Seconds()
				}
			}
			for _, at := range as {
				if st, ok := tcpState(at.tcp); ok && st != tcpEstablished {
					at.dropped(start)
				}
			}
			if !now.Before(end) {
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	var lats []time.Duration
	for trips := 0; trips < 1000000 && time.Now().Before(end); trips++ {
		began := time.Since(start)
		lat, err := roundTrip(min(10*time.Second, max(time.Until(end), time.Second)))
		if err != nil {
			if res.Failures++; res.FirstError == "" {
				res.FirstError = fmt.Sprintf("the round trip begun at %.1f s: %v", began.Seconds(), err)
			}
			continue
		}
		lats = append(lats, lat)
	}
	<-samplerDone
	stopAttack() // the writers still blocked give up: not dropped
	wg.Wait()
	res.RelayCPUs = (proc.cpu() - cpu0).Seconds()
	res.RSSEndBytes = proc.rss()
	if res.RSSPeakBytes > res.RSSBeforeBytes {
		res.RSSGrowthBytes = res.RSSPeakBytes - res.RSSBeforeBytes
	}
	res.RoundTrips = len(lats)
	res.P50ms, res.P95ms, res.Maxms = percentile(lats, 0.50), percentile(lats, 0.95), percentile(lats, 1)
	res.FirstDropS, res.LastDropS = -1, -1
	for _, at := range as {
		res.GetsWritten += at.written.Load()
		res.DoneS = append(res.DoneS, seconds(at.doneAt.Load()))
		d := seconds(at.dropAt.Load())
		res.DropS = append(res.DropS, d)
		if at.doneAt.Load() != 0 {
			res.AttackersDone++
		}
		if d < 0 {
			continue
		}
		res.AttackersDropped++
		if res.FirstDropS < 0 || d < res.FirstDropS {
			res.FirstDropS = d
		}
		res.LastDropS = max(res.LastDropS, d)
	}
	if res.AttackersDropped < nAttackers {
		res.LastDropS = -1
	}
	pctx, cancelPing := context.WithTimeout(ctx, 10*time.Second)
	res.StillServes = honest.Ping(pctx) == nil
	cancelPing()
	return res, nil
}

// dialRaw opens a WebSocket session from source (nil: any address) and
// runs the handshake; tcp is the underlying connection, for its state.
func dialRaw(ctx context.Context, addr wire.Address, source *net.TCPAddr) (*attacker, *wire.Session, error) {
	var tcp net.Conn
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			d := net.Dialer{}
			if source != nil {
				d.LocalAddr = source
			}
			c, err := d.DialContext(ctx, network, a)
			tcp = c
			return c, err
		},
	}}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, addr.WebSocketURL(), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, nil, err
	}
	hs, hello, err := wire.NewClientHandshake(addr.KeyHash)
	if err == nil {
		err = ws.Write(dctx, websocket.MessageBinary, hello)
	}
	var b []byte
	if err == nil {
		_, b, err = ws.Read(dctx)
	}
	var sess *wire.Session
	var confirm []byte
	if err == nil {
		sess, confirm, err = hs.Finish(b, wire.SupportedVersions())
	}
	if err == nil {
		err = ws.Write(dctx, websocket.MessageBinary, confirm)
	}
	if err != nil {
		_ = ws.CloseNow()
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	return &attacker{ws: ws, tcp: tcp}, sess, nil
}

type sourceKey struct{}

// withSource makes client.Dial (through useSourceAddresses) connect from
// source; nil leaves the choice to the system.
func withSource(ctx context.Context, source *net.TCPAddr) context.Context {
	if source == nil {
		return ctx
	}
	return context.WithValue(ctx, sourceKey{}, source)
}

var sourceOnce sync.Once

// useSourceAddresses makes the default HTTP transport, which the wire
// client dials with, bind the source address a dial's context names.
func useSourceAddresses() {
	sourceOnce.Do(func() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
			var d net.Dialer
			if src, ok := ctx.Value(sourceKey{}).(*net.TCPAddr); ok {
				d.LocalAddr = src
			}
			return d.DialContext(ctx, network, a)
		}
		http.DefaultTransport = tr
	})
}
