package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// genQueue is queue i of a generated store: everything about it follows
// from the seed and i, so that a client can later subscribe to any of
// them.
type genQueue struct {
	rcv, snd wire.QueueID
	auth     ed25519.PrivateKey // recipient's
	boxKey   [32]byte
	msgID    wire.MsgID
	sndSeed  [ed25519.SeedSize]byte // the sender key of a queue with a message
}

func deriveQueue(seed uint64, i int) genQueue {
	var in [len("wisp-bench start") + 16]byte
	n := copy(in[:], "wisp-bench start")
	binary.BigEndian.PutUint64(in[n:], seed)
	binary.BigEndian.PutUint64(in[n+8:], uint64(i))
	r := rand.NewChaCha8(sha256.Sum256(in[:]))
	var q genQueue
	var authSeed [ed25519.SeedSize]byte
	for _, b := range [][]byte{q.rcv[:], q.snd[:], authSeed[:], q.boxKey[:], q.msgID[:], q.sndSeed[:]} {
		_, _ = r.Read(b)
	}
	q.auth = ed25519.NewKeyFromSeed(authSeed[:])
	return q
}

// genBody is the body stored in queue i (when it has a message).
func genBody(seed uint64, i, size int) []byte {
	b := make([]byte, size)
	var s [32]byte
	binary.BigEndian.PutUint64(s[:], seed)
	binary.BigEndian.PutUint64(s[8:], uint64(i))
	_, _ = rand.NewChaCha8(s).Read(b)
	copy(b, fmt.Sprintf("wisp-bench start %d/%d ", seed, i))
	return b
}

func (q genQueue) subscription() client.Subscription {
	box := q.boxKey
	return client.Subscription{RcvID: q.rcv, Auth: q.auth, BoxKey: &box}
}

// startConfig is what the start subcommand generates and measures.
type startConfig struct {
	queues, msgEvery, size, workers int
	seed                            uint64
}

func (c startConfig) hasMsg(i int) bool { return c.msgEvery > 0 && i%c.msgEvery == 0 }

func (c startConfig) storedMsgs() int {
	if c.msgEvery == 0 {
		return 0
	}
	return (c.queues + c.msgEvery - 1) / c.msgEvery
}

// fillStore creates a relay data directory holding c.queues generated
// queues (queues.db through the store package, the empty chunk store
// through the files package, and an identity key), as wisp-relay finds
// it after a restart.
func fillStore(dir string, c startConfig) (time.Duration, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	start := time.Now()
	st, err := store.Open(filepath.Join(dir, "queues.db"))
	if err != nil {
		return 0, err
	}
	now := time.Now()
	var done atomic.Int64
	stop := make(chan struct{})
	var progress sync.WaitGroup
	progress.Go(func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				n := done.Load()
				fmt.Fprintf(os.Stderr, "filling: %d of %d queues, %.0f/s\n", n, c.queues, float64(n)/time.Since(start).Seconds())
			case <-stop:
				return
			}
		}
	})
	// Create waits for its group commit (up to 512 writes, one fsync),
	// so many writers at once fill each commit.
	err = parallel(c.queues, c.workers, func(i int) error {
		g := deriveQueue(c.seed, i)
		q := store.Queue{BoxKey: g.boxKey, Created: now}
		copy(q.RcvAuthKey[:], g.auth.Public().(ed25519.PublicKey))
		k := store.RecipientKey(g.rcv)
		if err := st.Create(k, store.SenderKeyOf(g.snd), q); err != nil {
			return fmt.Errorf("queue %d: %w", i, err)
		}
		if c.hasMsg(i) {
			// A message arrives by SEND, on a secured queue.
			var snd [wire.KeySize]byte
			copy(snd[:], ed25519.NewKeyFromSeed(g.sndSeed[:]).Public().(ed25519.PublicKey))
			if err := st.Secure(k, snd); err != nil {
				return fmt.Errorf("queue %d: %w", i, err)
			}
			m := store.Message{ID: g.msgID, Time: now, Body: genBody(c.seed, i, c.size)}
			if err := st.Put(k, m, 128); err != nil {
				return fmt.Errorf("queue %d: %w", i, err)
			}
		}
		done.Add(1)
		return nil
	})
	close(stop)
	progress.Wait()
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	fst, err := files.OpenStore(filepath.Join(dir, "files"), 10<<30)
	if err != nil {
		return 0, err
	}
	if err := fst.Close(); err != nil {
		return 0, err
	}
	// The identity comes last, as wisp-relay writes it: a directory
	// with an identity has its stores.
	seed := make([]byte, ed25519.SeedSize)
	r := rand.NewChaCha8(sha256.Sum256([]byte(fmt.Sprintf("wisp-bench start identity %d", c.seed))))
	_, _ = r.Read(seed)
	if err := os.WriteFile(filepath.Join(dir, "identity.key"), seed, 0o600); err != nil {
		return 0, err
	}
	if err := syncPath(filepath.Join(dir, "identity.key")); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// lockedBuffer collects a child's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startTiming is one timed start of wisp-relay.
type startTiming struct {
	addressMs   float64 // exec to the "relay address:" line
	connectedMs float64 // exec to the first client session (WebSocket and handshake) done
	checkMs     float64 // the start-up consistency check of queues.db, from the relay's log (0: not checked)
	stopMs      float64 // SIGTERM to exit
}

var checkLine = regexp.MustCompile(`msg="store file checked" file=(\S+) bytes=\d+ took=(\S+)`)

// timedStart starts wisp-relay on dir with the extra flags, connects
// one client, runs check (when not nil) with it, and stops the relay.
func timedStart(bin, dir string, check func(*client.Client, wire.Address) error, extra ...string) (startTiming, error) {
	var t startTiming
	args := append([]string{"-listen", "127.0.0.1:0", "-data", dir}, extra...)
	cmd := exec.Command(bin, args...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return t, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return t, err
	}
	c := &child{cmd: cmd}
	stopped := false
	defer func() {
		if !stopped {
			c.stop()
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "relay address: ") {
		c.stop()
		stopped = true
		return t, fmt.Errorf("%s did not print its address: %q %v\n%s", bin, line, err, stderr.String())
	}
	t.addressMs = ms(time.Since(t0))
	addr, err := wire.ParseAddress(strings.TrimSpace(strings.TrimPrefix(line, "relay address: ")))
	if err == nil && !addr.IsLoopback() {
		err = errors.New("the relay's address is not a loopback one")
	}
	if err != nil {
		return t, err
	}
	ctx, cancel := timeout(time.Minute)
	defer cancel()
	cl, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		return t, fmt.Errorf("first connection: %w", err)
	}
	t.connectedMs = ms(time.Since(t0))
	if check != nil {
		err = check(cl, addr)
	}
	_ = cl.Close()
	if err != nil {
		return t, err
	}
	t1 := time.Now()
	c.stop()
	stopped = true
	t.stopMs = ms(time.Since(t1))
	for _, m := range checkLine.FindAllStringSubmatch(stderr.String(), -1) {
		if filepath.Base(m[1]) != "queues.db" {
			continue
		}
		if d, err := time.ParseDuration(m[2]); err == nil {
			t.checkMs = ms(d)
		}
	}
	if !cmd.ProcessState.Success() {
		return t, fmt.Errorf("wisp-relay exited with %v\n%s", cmd.ProcessState, stderr.String())
	}
	return t, nil
}

// verifyStore checks, on a relay started on a generated store, that
// the relay counts every queue and message (its -metrics), that a
// client subscribes to some of the queues with their generated keys
// and receives their stored messages, and that a queue not generated
// is refused.
func verifyStore(c startConfig, metrics string) func(*client.Client, wire.Address) error {
	return func(cl *client.Client, _ wire.Address) error {
		m, err := scrapeMetrics(metrics)
		if err != nil {
			return err
		}
		if q, n := int(m["wisp_relay_queues"]), int(m["wisp_relay_messages_stored"]); q != c.queues || n != c.storedMsgs() {
			return fmt.Errorf("the relay counts %d queues and %d messages, want %d and %d", q, n, c.queues, c.storedMsgs())
		}
		probes := []int{0, c.queues / 2, c.queues - 1}
		if c.msgEvery > 0 {
			probes = append(probes, (c.queues-1)/c.msgEvery*c.msgEvery)
		}
		slices.Sort(probes)
		probes = slices.Compact(probes)
		var subs []client.Subscription
		want := map[wire.QueueID]int{}
		for _, i := range probes {
			g := deriveQueue(c.seed, i)
			subs = append(subs, g.subscription())
			if c.hasMsg(i) {
				want[g.rcv] = i
			}
		}
		ctx, cancel := timeout(30 * time.Second)
		defer cancel()
		for k, err := range cl.Subscribe(ctx, subs...) {
			if err != nil {
				return fmt.Errorf("SUB to generated queue %d: %w", probes[k], err)
			}
		}
		for len(want) > 0 {
			select {
			case ev := <-cl.Events():
				i, ok := want[ev.RcvID]
				if ev.Kind != client.EventMessage || !ok {
					continue
				}
				g := deriveQueue(c.seed, i)
				if ev.Err != nil || ev.Message.ID != g.msgID || !bytes.Equal(ev.Message.Body, genBody(c.seed, i, c.size)) {
					return fmt.Errorf("queue %d: wrong message delivered (err %v)", i, ev.Err)
				}
				delete(want, ev.RcvID)
			case <-ctx.Done():
				return fmt.Errorf("%d stored messages not delivered", len(want))
			}
		}
		// A queue beyond the generated ones does not exist.
		if err := cl.Subscribe(ctx, deriveQueue(c.seed, c.queues).subscription())[0]; !errors.Is(err, wire.CodeAuth) {
			return fmt.Errorf("SUB to a queue not generated: %v, want AUTH", err)
		}
		return nil
	}
}

// startRow is one store's starts in the output.
type startRow struct {
	Name        string    `json:"name"`
	Queues      int       `json:"queues"`
	Flags       string    `json:"flags,omitempty"`
	Cold        bool      `json:"cold,omitempty"` // queues.db evicted from the page cache before each start
	StoreBytes  int64     `json:"store_bytes"`    // queues.db
	AddressMs   []float64 `json:"address_ms"`
	ConnectedMs []float64 `json:"connected_ms"`
	CheckMs     []float64 `json:"check_ms"`
	StopMs      []float64 `json:"stop_ms"`
}

type startResult struct {
	Queues      int     `json:"queues"`
	Msgs        int     `json:"msgs_stored"`
	Size        int     `json:"size"`
	Reused      bool    `json:"reused"` // -data held a generated store already
	FillS       float64 `json:"fill_s,omitempty"`
	FillPerS    float64 `json:"fill_queues_per_s,omitempty"`
	StoreBytes  int64   `json:"store_bytes"`
	EmptyBytes  int64   `json:"empty_store_bytes"`
	Verified    bool    `json:"verified"`
	ProbeQueues int     `json:"probe_queues"`
	// Medians over -starts: exec to the address line, and to the first
	// client session.
	EmptyAddressMs     float64 `json:"empty_address_ms"`
	EmptyConnectedMs   float64 `json:"empty_connected_ms"`
	AddressMs          float64 `json:"address_ms"`
	ConnectedMs        float64 `json:"connected_ms"`
	CheckMs            float64 `json:"check_ms"`
	NoCheckAddressMs   float64 `json:"nocheck_address_ms"`
	NoCheckConnectedMs float64 `json:"nocheck_connected_ms"`
	// Cold: queues.db evicted from the page cache before each start
	// (Linux); absent elsewhere.
	ColdAddressMs        float64    `json:"cold_address_ms,omitempty"`
	ColdCheckMs          float64    `json:"cold_check_ms,omitempty"`
	ColdNoCheckAddressMs float64    `json:"cold_nocheck_address_ms,omitempty"`
	Rows                 []startRow `json:"rows"`
}

func median(l []float64) float64 {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// readFile reads a file through, which leaves it in the page cache.
func readFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

func runStart(args []string) error {
	flags := flag.NewFlagSet("start", flag.ExitOnError)
	var c startConfig
	bin := flags.String("relay-bin", "", "wisp-relay binary (default: next to wisp-bench, then PATH)")
	flags.IntVar(&c.queues, "queues", 1000000, "queues in the generated store")
	flags.IntVar(&c.msgEvery, "msg-every", 100, "store one message in every queue whose index is a multiple of this (0: none)")
	flags.IntVar(&c.size, "size", 1000, "body size of the stored messages (16-16000)")
	flags.IntVar(&c.workers, "workers", 1024, "concurrent writers while filling (the store commits up to 512 writes per fsync)")
	seed := flags.Int64("seed", 1, "seed the generated queue IDs, keys and messages follow from")
	starts := flags.Int("starts", 5, "timed starts of each store")
	data := flags.String("data", "", "data directory to generate into and keep (default: a temporary one, removed); if it already holds queues.db, generated earlier with the same -queues, -msg-every, -size and -seed, it is reused")
	_ = flags.Parse(args)
	c.seed = uint64(*seed)
	if c.queues < 1 || c.msgEvery < 0 || c.size < 16 || c.size > wire.MaxBodySize || c.workers < 1 || *starts < 1 {
		return errors.New("need -queues, -workers, -starts ≥ 1, -msg-every ≥ 0 and 16 ≤ -size ≤ 16000")
	}
	relay, err := relayBin(*bin)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "wisp-bench-start-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "filled")
	if *data != "" {
		dir = *data
	}
	res := startResult{Queues: c.queues, Msgs: c.storedMsgs(), Size: c.size}
	if _, err := os.Stat(filepath.Join(dir, "queues.db")); err == nil {
		res.Reused = true
		fmt.Fprintf(os.Stderr, "reusing the store in %s\n", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	} else {
		fmt.Fprintf(os.Stderr, "filling %s with %d queues (%d messages of %d bytes)\n", dir, c.queues, c.storedMsgs(), c.size)
		d, err := fillStore(dir, c)
		if err != nil {
			return fmt.Errorf("filling the store: %w", err)
		}
		res.FillS = d.Seconds()
		res.FillPerS = float64(c.queues) / res.FillS
	}
	res.StoreBytes = fileSize(filepath.Join(dir, "queues.db"))

	// The empty store: a relay started once on a new directory creates
	// it, so every timed start is a restart, like the filled store's.
	empty := filepath.Join(tmp, "empty")
	if _, err := timedStart(relay, empty, nil); err != nil {
		return fmt.Errorf("creating the empty store: %w", err)
	}
	res.EmptyBytes = fileSize(filepath.Join(empty, "queues.db"))

	port, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	metrics := fmt.Sprintf("127.0.0.1:%d", port)
	if _, err := timedStart(relay, dir, verifyStore(c, metrics), "-metrics", metrics); err != nil {
		return fmt.Errorf("verifying the generated store: %w", err)
	}
	res.Verified = true
	res.ProbeQueues = 4

	rows := []*startRow{
		{Name: "empty", StoreBytes: res.EmptyBytes},
		{Name: "filled", Queues: c.queues, StoreBytes: res.StoreBytes},
		{Name: "filled, no check", Queues: c.queues, StoreBytes: res.StoreBytes, Flags: "-check-max-size 0"},
	}
	queuesDB := filepath.Join(dir, "queues.db")
	cold := dropFileCache(queuesDB) == nil
	if cold {
		rows = append(rows,
			&startRow{Name: "filled, cold", Queues: c.queues, StoreBytes: res.StoreBytes, Cold: true},
			&startRow{Name: "filled, cold, no check", Queues: c.queues, StoreBytes: res.StoreBytes, Flags: "-check-max-size 0", Cold: true})
	} else {
		fmt.Fprintln(os.Stderr, "no cold-cache starts: cannot evict a file from the page cache here")
	}
	for range *starts {
		for _, r := range rows {
			d := dir
			if r.Queues == 0 {
				d = empty
			}
			if r.Cold {
				if err := dropFileCache(queuesDB); err != nil {
					return err
				}
			} else if r.Queues > 0 {
				// A cold start before may have left it out of the cache.
				if err := readFile(queuesDB); err != nil {
					return err
				}
			}
			t, err := timedStart(relay, d, nil, strings.Fields(r.Flags)...)
			if err != nil {
				return fmt.Errorf("start (%s): %w", r.Name, err)
			}
			r.AddressMs = append(r.AddressMs, t.addressMs)
			r.ConnectedMs = append(r.ConnectedMs, t.connectedMs)
			r.CheckMs = append(r.CheckMs, t.checkMs)
			r.StopMs = append(r.StopMs, t.stopMs)
		}
	}
	res.EmptyAddressMs, res.EmptyConnectedMs = median(rows[0].AddressMs), median(rows[0].ConnectedMs)
	res.AddressMs, res.ConnectedMs, res.CheckMs = median(rows[1].AddressMs), median(rows[1].ConnectedMs), median(rows[1].CheckMs)
	res.NoCheckAddressMs, res.NoCheckConnectedMs = median(rows[2].AddressMs), median(rows[2].ConnectedMs)
	if cold {
		res.ColdAddressMs, res.ColdCheckMs, res.ColdNoCheckAddressMs = median(rows[3].AddressMs), median(rows[3].CheckMs), median(rows[4].AddressMs)
	}

	if res.FillS > 0 {
		fmt.Printf("filled %d queues (%d with a %d-byte message) through the store API in %.1f s (%.0f queues/s)\n",
			c.queues, res.Msgs, c.size, res.FillS, res.FillPerS)
	}
	fmt.Printf("verified: the relay counts %d queues and %d messages; SUB to generated queues delivers their stored messages; an unknown queue is AUTH\n", c.queues, res.Msgs)
	fmt.Printf("%-22s %9s %10s %24s %24s %16s %10s\n", "store", "queues", "MiB", "exec→address ms med/max", "exec→session ms med/max", "check ms med", "stop ms")
	for _, r := range rows {
		res.Rows = append(res.Rows, *r)
		fmt.Printf("%-22s %9d %10.1f %15.1f/%8.1f %15.1f/%8.1f %16.1f %10.1f\n", r.Name, r.Queues, float64(r.StoreBytes)/(1<<20),
			median(r.AddressMs), slices.Max(r.AddressMs), median(r.ConnectedMs), slices.Max(r.ConnectedMs), median(r.CheckMs), median(r.StopMs))
	}
	fmt.Printf("starts=%d each, interleaved; \"no check\": wisp-relay %s (no start-up consistency check of queues.db); \"cold\": queues.db evicted from the page cache before each start\n", *starts, rows[2].Flags)
	return printJSON(res)
}
