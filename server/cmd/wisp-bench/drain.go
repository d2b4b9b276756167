package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// drainResult is what wisp-bench drain measured.
type drainResult struct {
	Conns   int `json:"conns"`
	Senders int `json:"senders"`
	Queues  int `json:"queues"`
	Msgs    int `json:"msgs"`
	Size    int `json:"size"`
	// Setup: NEW, SKEY and every SEND.
	SetupS           float64 `json:"setup_s"`
	SetupMsgsPerS    float64 `json:"setup_msgs_per_s"`
	Acknowledged     int64   `json:"acknowledged"` // SENDs that returned nil
	SendErrors       int64   `json:"send_errors"`
	SetupDisconnects int64   `json:"setup_disconnects"`
	SetupCPUs        float64 `json:"setup_relay_cpu_s"`
	// Drain: from the first SUB to the last acknowledged body received.
	SubS         float64 `json:"sub_s"`   // every Subscribe call returned
	DrainS       float64 `json:"drain_s"` // every acknowledged body received
	AckedS       float64 `json:"acked_s"` // every one of them ACKed with OK
	MsgsPerS     float64 `json:"msgs_per_s"`
	SubErrors    int64   `json:"sub_errors"`
	Received     int64   `json:"received"`    // MSG events opened
	Distinct     int64   `json:"distinct"`    // distinct bodies
	Duplicates   int64   `json:"duplicates"`  // receptions of a body already received
	Redelivered  int64   `json:"redelivered"` // of those, with a message ID already received on the queue
	Unsent       int64   `json:"unsent"`      // distinct bodies received whose SEND did not return nil
	Foreign      int64   `json:"foreign"`     // bodies not sent by this run or on the wrong connection
	OpenErrors   int64   `json:"open_errors"`
	Missing      int64   `json:"missing"` // acknowledged bodies never received
	Disconnects  int64   `json:"disconnects"`
	Reconnects   int64   `json:"reconnects"`
	Ends         int64   `json:"ends"`
	AckErrors    int64   `json:"ack_errors"`
	Unconfirmed  int64   `json:"unconfirmed"` // acknowledged bodies with no ACK answered OK (ACKs lost with a connection)
	TimedOut     bool    `json:"timed_out"`
	RSSBytes     int64   `json:"rss_bytes"`
	RelayCPUs    float64 `json:"relay_cpu_s"` // over the drain
	Pass         bool    `json:"pass"`
	FirstFailure string  `json:"first_failure,omitempty"`
}

// errDrainFailed is returned after the summary line when drain failed.
var errDrainFailed = errors.New("drain failed: see the summary line")

// drainConfig is drain's flags.
type drainConfig struct {
	conns, senders, queues, msgs, size, workers int
	timeout                                     time.Duration
}

func runDrain(args []string) error {
	fs := flag.NewFlagSet("drain", flag.ExitOnError)
	var t target
	t.flags(fs)
	var cfg drainConfig
	fs.IntVar(&cfg.conns, "conns", 100, "recipient connections (queue i is owned by connection i%conns)")
	fs.IntVar(&cfg.senders, "senders", 10, "sender connections of the setup (SKEY and SEND)")
	fs.IntVar(&cfg.queues, "queues", 100000, "queues")
	fs.IntVar(&cfg.msgs, "msgs", 1, "messages stored per queue (at most the relay's queue quota, 128 by default)")
	fs.IntVar(&cfg.size, "size", 1000, "message body size (16-16000)")
	fs.IntVar(&cfg.workers, "workers", 2048, "queues set up at once (NEW, SKEY, SENDs)")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "how long the drain may take before what is missing is reported")
	_ = fs.Parse(args)
	if cfg.conns < 1 || cfg.senders < 1 || cfg.queues < 1 || cfg.msgs < 1 || cfg.workers < 1 ||
		cfg.size < 16 || cfg.size > wire.MaxBodySize || cfg.timeout <= 0 {
		return errors.New("need -conns, -senders, -queues, -msgs, -workers ≥ 1, 16 ≤ -size ≤ 16000 and -timeout > 0")
	}
	lim, err := raiseFileLimit()
	if err != nil {
		return err
	}
	if need := uint64(2*cfg.conns+cfg.senders) + 256; lim < need {
		return fmt.Errorf("RLIMIT_NOFILE is %d, too low for %d connections", lim, 2*cfg.conns+cfg.senders)
	}
	addr, stop, err := t.start()
	if err != nil {
		return err
	}
	defer stop()
	res, err := drive(addr, t.process, cfg)
	if err != nil {
		return err
	}
	return reportDrain(res)
}

// drainSetup is what the setup left: each queue's subscription and which
// bodies the relay acknowledged (acked[q*msgs+m]).
type drainSetup struct {
	subs  []client.Subscription
	acked []bool
}

// drainBody is message m of queue q: both indexes first, then filler.
func drainBody(q, m, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, uint64(q))
	binary.BigEndian.PutUint64(b[8:], uint64(m))
	for i := 16; i < size; i++ {
		b[i] = byte(q + m + i)
	}
	return b
}

// watchEvents counts the disconnections of clients that subscribe to
// nothing, until their Events channels close.
func watchEvents(cs []*client.Client, disconnects *atomic.Int64, wg *sync.WaitGroup) {
	for _, c := range cs {
		wg.Go(func() {
			for ev := range c.Events() {
				if ev.Kind == client.EventDisconnected {
					disconnects.Add(1)
				}
			}
		})
	}
}

// dialAll opens n clients.
func dialAll(ctx context.Context, addr wire.Address, n int, opts client.Options) ([]*client.Client, error) {
	cs := make([]*client.Client, n)
	for i := range cs {
		c, err := client.Dial(ctx, addr, opts)
		if err != nil {
			closeAll(cs[:i])
			return nil, fmt.Errorf("dial: %w", err)
		}
		cs[i] = c
	}
	return cs, nil
}

func closeAll(cs []*client.Client) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { _ = c.Close() })
	}
	wg.Wait()
}

// setupDrain creates the queues (NEW on their owner, SKEY and SEND from a
// sender) on cfg.workers goroutines, and closes every setup connection
// before it returns, so that nothing is subscribed.
func setupDrain(addr wire.Address, cfg drainConfig, res *drainResult) (*drainSetup, error) {
	ctx, cancel := timeout(30 * time.Minute)
	defer cancel()
	owners, err := dialAll(ctx, addr, cfg.conns, client.Options{})
	if err != nil {
		return nil, err
	}
	senders, err := dialAll(ctx, addr, cfg.senders, client.Options{})
	if err != nil {
		closeAll(owners)
		return nil, err
	}
	var disconnects atomic.Int64
	var watch sync.WaitGroup
	watchEvents(owners, &disconnects, &watch)
	watchEvents(senders, &disconnects, &watch)
	defer func() {
		closeAll(owners)
		closeAll(senders)
		watch.Wait()
		res.SetupDisconnects = disconnects.Load()
	}()

	s := &drainSetup{subs: make([]client.Subscription, cfg.queues), acked: make([]bool, cfg.queues*cfg.msgs)}
	var acknowledged, sendErrors atomic.Int64
	var firstSendErr error
	var errMu sync.Mutex
	err = parallelN(cfg.workers, cfg.queues, func(q int) error {
		keys, err := client.NewRecipientKeys()
		if err != nil {
			return err
		}
		info, err := owners[q%cfg.conns].New(ctx, keys, nil)
		if err != nil {
			return fmt.Errorf("NEW queue %d: %w", q, err)
		}
		s.subs[q] = info.Subscription(keys)
		_, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		sender := senders[q%cfg.senders]
		if err := sender.Secure(ctx, info.SndID, sk); err != nil {
			return fmt.Errorf("SKEY queue %d: %w", q, err)
		}
		for m := range cfg.msgs {
			// A SEND that failed may still have been stored: it is not
			// retried (that could store it twice) and not counted as
			// acknowledged.
			if err := sender.Send(ctx, info.SndID, sk, drainBody(q, m, cfg.size)); err != nil {
				if sendErrors.Add(1) == 1 {
					errMu.Lock()
					firstSendErr = fmt.Errorf("SEND queue %d message %d: %w", q, m, err)
					errMu.Unlock()
				}
				continue
			}
			s.acked[q*cfg.msgs+m] = true
			acknowledged.Add(1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Acknowledged, res.SendErrors = acknowledged.Load(), sendErrors.Load()
	if firstSendErr != nil {
		fmt.Fprintf(os.Stderr, "wisp-bench drain: %d SENDs failed, the first: %v\n", res.SendErrors, firstSendErr)
	}
	return s, nil
}

// parallelN runs f(i) for i in [0, n) on at most workers goroutines and
// returns the first error; after one, no further i is started.
func parallelN(workers, n int, f func(i int) error) error {
	var g errGroup
	var next atomic.Int64
	var failed atomic.Bool
	for range min(workers, n) {
		g.Go(func() error {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := f(i); err != nil {
					failed.Store(true)
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// drainCounts is the drain's shared tally.
type drainCounts struct {
	mu        sync.Mutex
	seen      []int32 // receptions per body
	ackedOK   []bool  // an ACK of the body was answered OK
	gotAcked  int64   // distinct acknowledged bodies received
	okAcked   int64   // distinct acknowledged bodies ACKed with OK
	want      int64
	inflight  int64         // ACK calls not returned
	allGot    chan struct{} // closed when gotAcked reaches want
	settled   chan struct{} // closed when, after that, no ACK call is in flight
	isSettled bool
	disconErr []string // the first few disconnection reasons

	received, distinct, duplicates, redelivered, unsent, foreign  atomic.Int64
	openErrors, disconnects, connects, ends, ackErrors, subErrors atomic.Int64
	firstAckErr, firstSubErr                                      string // under mu
}

// drive runs the setup, then the drain on fresh connections.
func drive(addr wire.Address, relay *child, cfg drainConfig) (*drainResult, error) {
	res := &drainResult{Conns: cfg.conns, Senders: cfg.senders, Queues: cfg.queues, Msgs: cfg.msgs, Size: cfg.size}
	cpu0 := relay.cpu()
	start := time.Now()
	s, err := setupDrain(addr, cfg, res)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	res.SetupS = time.Since(start).Seconds()
	res.SetupMsgsPerS = float64(res.Acknowledged) / res.SetupS
	res.SetupCPUs = (relay.cpu() - cpu0).Seconds()
	fmt.Printf("setup: %d queues, %d messages of %d bytes acknowledged (%d SEND errors) in %.1f s (%.0f msgs/s, relay CPU %.1f s, %d setup disconnects)\n",
		cfg.queues, res.Acknowledged, cfg.size, res.SendErrors, res.SetupS, res.SetupMsgsPerS, res.SetupCPUs, res.SetupDisconnects)

	ctx, cancel := timeout(cfg.timeout)
	defer cancel()
	dc := &drainCounts{
		seen: make([]int32, len(s.acked)), ackedOK: make([]bool, len(s.acked)),
		want: res.Acknowledged, allGot: make(chan struct{}), settled: make(chan struct{}),
	}
	if dc.want == 0 {
		close(dc.allGot)
		close(dc.settled)
		dc.isSettled = true
	}
	// Room for every message a connection may be pushed at once, so that
	// the reader never waits on the Events channel (and keeps answering
	// the relay's pings).
	perConn := (cfg.queues + cfg.conns - 1) / cfg.conns
	rcpts, err := dialAll(ctx, addr, cfg.conns, client.Options{EventBuffer: max(4096, 2*perConn+64)})
	if err != nil {
		return nil, fmt.Errorf("drain: %w", err)
	}
	closed := false
	closeRcpts := func() {
		if !closed {
			closeAll(rcpts)
			closed = true
		}
	}
	defer closeRcpts()
	subs := make([][]client.Subscription, cfg.conns)
	for q, sub := range s.subs {
		subs[q%cfg.conns] = append(subs[q%cfg.conns], sub)
	}
	var readers, acks sync.WaitGroup
	for i, c := range rcpts {
		readers.Go(func() { dc.read(ctx, c, i, cfg, s, &acks) })
	}

	cpu0 = relay.cpu()
	start = time.Now()
	var subWG sync.WaitGroup
	for i, c := range rcpts {
		subWG.Go(func() {
			for _, err := range c.Subscribe(ctx, subs[i]...) {
				if err != nil {
					dc.subError(err)
				}
			}
		})
	}
	subWG.Wait()
	res.SubS = time.Since(start).Seconds()
	fmt.Printf("drain: %d connections subscribed %d queues in %.1f s (%d SUB errors)\n", cfg.conns, cfg.queues, res.SubS, dc.subErrorsN())

	select {
	case <-dc.allGot:
		res.DrainS = time.Since(start).Seconds()
		// Every ACK issued has returned: with no disconnection, each
		// was answered OK and the queues are empty. An ACK lost with its
		// connection may or may not have been applied, so its message may
		// or may not come again: not waited for (the disconnection fails
		// the run anyway).
		select {
		case <-dc.settled:
			dc.mu.Lock()
			res.Unconfirmed = dc.want - dc.okAcked
			dc.mu.Unlock()
			if res.Unconfirmed == 0 {
				res.AckedS = time.Since(start).Seconds()
			}
		case <-ctx.Done():
			res.TimedOut = true
		}
	case <-ctx.Done():
		res.TimedOut = true
		res.DrainS = time.Since(start).Seconds()
	}
	res.RelayCPUs = (relay.cpu() - cpu0).Seconds()
	res.RSSBytes = relay.rss()
	closeRcpts()
	readers.Wait()
	acks.Wait()

	dc.mu.Lock()
	defer dc.mu.Unlock()
	var missing []string
	for i, ok := range s.acked {
		if ok && dc.seen[i] == 0 {
			res.Missing++
			if len(missing) < 10 {
				missing = append(missing, fmt.Sprintf("queue %d message %d", i/cfg.msgs, i%cfg.msgs))
			}
		}
	}
	if res.Missing > 0 {
		fmt.Fprintf(os.Stderr, "wisp-bench drain: %d acknowledged bodies missing, the first: %s\n", res.Missing, strings.Join(missing, ", "))
	}
	for _, e := range dc.disconErr {
		fmt.Fprintf(os.Stderr, "wisp-bench drain: disconnected: %s\n", e)
	}
	if dc.firstAckErr != "" {
		fmt.Fprintf(os.Stderr, "wisp-bench drain: %d ACKs failed, the first: %s\n", dc.ackErrors.Load(), dc.firstAckErr)
	}
	if dc.firstSubErr != "" {
		fmt.Fprintf(os.Stderr, "wisp-bench drain: %d SUBs failed, the first: %s\n", dc.subErrors.Load(), dc.firstSubErr)
	}
	res.SubErrors = dc.subErrorsN()
	res.Received, res.Distinct, res.Duplicates = dc.received.Load(), dc.distinct.Load(), dc.duplicates.Load()
	res.Redelivered, res.Unsent, res.Foreign = dc.redelivered.Load(), dc.unsent.Load(), dc.foreign.Load()
	res.OpenErrors, res.Disconnects, res.Ends = dc.openErrors.Load(), dc.disconnects.Load(), dc.ends.Load()
	res.Reconnects = max(0, dc.connects.Load()-int64(cfg.conns))
	res.AckErrors = dc.ackErrors.Load()
	if res.DrainS > 0 && res.Missing == 0 {
		res.MsgsPerS = float64(res.Acknowledged) / res.DrainS
	}
	return res, nil
}

func (dc *drainCounts) subError(err error) {
	if dc.subErrors.Add(1) == 1 {
		dc.mu.Lock()
		dc.firstSubErr = err.Error()
		dc.mu.Unlock()
	}
}

func (dc *drainCounts) subErrorsN() int64 { return dc.subErrors.Load() }

// got records the reception of body i (again: its message ID was
// received on the queue before) and the ACK of it about to be issued.
func (dc *drainCounts) got(i int, acked, again bool) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	dc.inflight++
	dc.seen[i]++
	if dc.seen[i] > 1 {
		dc.duplicates.Add(1)
		if again {
			dc.redelivered.Add(1)
		}
		return
	}
	dc.distinct.Add(1)
	if !acked {
		dc.unsent.Add(1)
		return
	}
	if dc.gotAcked++; dc.gotAcked == dc.want {
		close(dc.allGot)
	}
}

// ackDone records that an ACK call returned (under mu).
func (dc *drainCounts) ackDone() {
	dc.inflight--
	if !dc.isSettled && dc.gotAcked == dc.want && dc.inflight == 0 {
		dc.isSettled = true
		close(dc.settled)
	}
}

// ok records that an ACK of body i returned, answered OK if success.
func (dc *drainCounts) ok(i int, acked, success bool) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	defer dc.ackDone()
	if !success || !acked || dc.ackedOK[i] {
		return
	}
	dc.ackedOK[i] = true
	dc.okAcked++
}

// read handles the events of recipient connection conn until its Events
// channel closes: it tallies every MSG and ACKs it on its own goroutine
// (tracked by acks), so that the reader never keeps the client waiting.
func (dc *drainCounts) read(ctx context.Context, c *client.Client, conn int, cfg drainConfig, s *drainSetup, acks *sync.WaitGroup) {
	type delivery struct {
		rcv wire.QueueID
		id  wire.MsgID
	}
	ids := make(map[delivery]bool)
	queueOf := make(map[wire.QueueID]int)
	for q := conn; q < cfg.queues; q += cfg.conns {
		queueOf[s.subs[q].RcvID] = q
	}
	for ev := range c.Events() {
		switch ev.Kind {
		case client.EventConnected:
			dc.connects.Add(1)
		case client.EventDisconnected:
			dc.disconnects.Add(1)
			dc.mu.Lock()
			if len(dc.disconErr) < 10 {
				dc.disconErr = append(dc.disconErr, fmt.Sprintf("connection %d: %v", conn, ev.Err))
			}
			dc.mu.Unlock()
		case client.EventEnd:
			dc.ends.Add(1)
		case client.EventMessage:
			if ev.Err != nil {
				dc.openErrors.Add(1)
				continue
			}
			dc.received.Add(1)
			q, mine := queueOf[ev.RcvID]
			if !mine {
				dc.foreign.Add(1)
				continue
			}
			d := delivery{ev.RcvID, ev.Message.ID}
			again := ids[d]
			ids[d] = true
			b := ev.Message.Body
			i, acked := -1, false
			if len(b) >= 16 && binary.BigEndian.Uint64(b) == uint64(q) && binary.BigEndian.Uint64(b[8:]) < uint64(cfg.msgs) {
				i = q*cfg.msgs + int(binary.BigEndian.Uint64(b[8:]))
				acked = s.acked[i]
				dc.got(i, acked, again)
			} else {
				dc.foreign.Add(1)
			}
			id := ev.Message.ID
			acks.Go(func() {
				err := c.Ack(ctx, s.subs[q], id)
				if i >= 0 {
					dc.ok(i, acked, err == nil)
				}
				switch {
				case err == nil:
				case errors.Is(err, client.ErrClosed):
					// The run is over.
				default:
					if dc.ackErrors.Add(1) == 1 {
						dc.mu.Lock()
						dc.firstAckErr = fmt.Sprintf("queue %d: %v", q, err)
						dc.mu.Unlock()
					}
				}
			})
		}
	}
}

// reportDrain prints the results, the summary line and the JSON, and
// returns errDrainFailed if the drain lost, repeated or dropped anything.
func reportDrain(res *drainResult) error {
	acked := fmt.Sprintf("all ACKed OK at %.1f s", res.AckedS)
	if res.AckedS == 0 {
		acked = fmt.Sprintf("%d not ACKed OK", res.Unconfirmed)
	}
	fmt.Printf("drain: %d of %d acknowledged bodies received in %.1f s (%.0f msgs/s), %s, SUB phase %.1f s\n",
		res.Distinct-res.Unsent, res.Acknowledged, res.DrainS, res.MsgsPerS, acked, res.SubS)
	fmt.Printf("received=%d distinct=%d duplicates=%d redelivered=%d unsent=%d foreign=%d open_errors=%d missing=%d\n",
		res.Received, res.Distinct, res.Duplicates, res.Redelivered, res.Unsent, res.Foreign, res.OpenErrors, res.Missing)
	fmt.Printf("disconnects=%d reconnects=%d ends=%d sub_errors=%d ack_errors=%d timed_out=%v relay RSS=%.1f MiB relay CPU (drain)=%.1f s\n",
		res.Disconnects, res.Reconnects, res.Ends, res.SubErrors, res.AckErrors, res.TimedOut, float64(res.RSSBytes)/(1<<20), res.RelayCPUs)
	var why []string
	add := func(n int64, what string) {
		if n > 0 {
			why = append(why, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(res.Missing, "acknowledged bodies missing")
	add(res.Disconnects, "disconnects")
	add(res.Duplicates, fmt.Sprintf("duplicates (%d redelivered)", res.Redelivered))
	add(res.SendErrors, "SEND errors")
	add(res.SetupDisconnects, "setup disconnects")
	add(res.SubErrors, "SUB errors")
	if res.TimedOut {
		why = append(why, "timed out")
	}
	res.Pass = len(why) == 0
	if res.Pass {
		fmt.Printf("drain PASS: %d messages on %d queues over %d connections delivered once each, no disconnects\n", res.Acknowledged, res.Queues, res.Conns)
	} else {
		res.FirstFailure = why[0]
		fmt.Printf("drain FAIL: %s\n", strings.Join(why, ", "))
	}
	if err := printJSON(res); err != nil {
		return err
	}
	if !res.Pass {
		return errDrainFailed
	}
	return nil
}
