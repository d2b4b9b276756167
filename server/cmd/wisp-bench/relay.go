package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

type relayResult struct {
	MsgsPerS         float64 `json:"msgs_per_s"`
	P50ms            float64 `json:"p50_ms"`
	P95ms            float64 `json:"p95_ms"`
	P99ms            float64 `json:"p99_ms"`
	Maxms            float64 `json:"max_ms"`
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
	// -proxy only: the proxy relay's figures over the whole run (SKEYs
	// included), from its -metrics endpoint and /proc.
	ProxyRoutesOpened int64    `json:"proxy_routes_opened,omitempty"`
	ProxyForwarded    int64    `json:"proxy_forwarded,omitempty"`
	RouteReuse        *float64 `json:"route_reuse,omitempty"` // 1 − routes_opened/forwarded
	DestForwardedIn   int64    `json:"dest_forwarded_in,omitempty"`
	ProxyRSSBytes     int64    `json:"proxy_rss_bytes,omitempty"`
	ProxyCPUs         float64  `json:"proxy_cpu_s,omitempty"`
	LimitRetries      int64    `json:"limit_retries,omitempty"` // PFWDs the proxy refused with LIMIT and sent again
	// -cluster only: the runs in order (the fields above are then the
	// first one's, bbolt with one process, and its ratio to the echo
	// baseline) and where the PostgreSQL server came from.
	Runs     []storeRun `json:"runs,omitempty"`
	Postgres string     `json:"postgres,omitempty"` // "pgtest" (throwaway, fsync on) or "store" (the -store server)
	// -rate and -rate-fraction: the open-loop runs after the closed one
	// (whose msgs/s is the peak), in the order given.
	Paced []pacedRun `json:"paced,omitempty"`
}

// pacedRun is one open-loop run (relay -rate, -rate-fraction): SENDs
// scheduled at a fixed pace, latency from each SEND's scheduled time to
// its MSG (so that a SEND that starts late, behind a slow one, counts
// its wait: no coordinated omission).
type pacedRun struct {
	Fraction float64 `json:"fraction,omitempty"` // of the closed run's msgs/s; 0 for an absolute -rate
	Rate     float64 `json:"rate"`               // msgs/s scheduled
	MsgsPerS float64 `json:"msgs_per_s"`         // delivered: messages / (first scheduled SEND to last MSG)
	P50ms    float64 `json:"p50_ms"`
	P95ms    float64 `json:"p95_ms"`
	P99ms    float64 `json:"p99_ms"`
	Maxms    float64 `json:"max_ms"`
	// SendLag is how late wisp-bench started SENDs after their
	// scheduled time (its own delay, included in the latencies): a large
	// one means the client, not the relay, could not keep the pace.
	SendLagP99ms float64 `json:"send_lag_p99_ms"`
	SendLagMaxms float64 `json:"send_lag_max_ms"`
	RelayCPUs    float64 `json:"relay_cpu_s"` // over the whole drive (connections, NEW, SKEY, SUB, SEND, ACK)
	BenchCPUs    float64 `json:"bench_cpu_s"` // wisp-bench's own, likewise
	Msgs         int     `json:"msgs"`
}

// floatList is a flag of comma-separated positive numbers.
type floatList []float64

func (l *floatList) String() string {
	var parts []string
	for _, f := range *l {
		parts = append(parts, strconv.FormatFloat(f, 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

func (l *floatList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(f > 0) || math.IsInf(f, 0) {
			return fmt.Errorf("%q is not a positive number", p)
		}
		*l = append(*l, f)
	}
	return nil
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
	lockstep := fs.Bool("lockstep", false, "each queue's sender waits until its message is delivered and acknowledged before sending the next (one message in flight per queue end to end: latency without queueing behind earlier messages)")
	viaProxy := fs.Bool("proxy", false, "private routing: spawn a second relay (-proxy-private) as the senders' proxy; senders connect to it, create one queue there and SKEY/SEND through it (ProxySecure/ProxySend)")
	cluster := fs.Bool("cluster", false, "compare stores in one run: bbolt with one relay process, PostgreSQL with one process, PostgreSQL with two processes on one database (connection i on process i%2, so every queue's sender and recipient are on different processes), then the echo baseline; implies -spawn")
	var rates, fractions floatList
	fs.Var(&rates, "rate", "after the closed run, open-loop runs at these rates (msgs/s, comma-separated): SENDs scheduled at a fixed pace over all queues, latency from the scheduled time (no coordinated omission); each creates its own connections and queues and sends -queues × -msgs messages")
	fs.Var(&fractions, "rate-fraction", "after the closed run, open-loop runs (as -rate) at these fractions of its msgs/s, the peak (e.g. 0.5,0.25)")
	storeURL := fs.String("store", "", "with -cluster: a loopback PostgreSQL server (postgres://user@127.0.0.1:5432/db) to use instead of a throwaway one; each PostgreSQL run gets a new database created there (CREATEDB privilege needed) and dropped at the end, and the database of the URL itself is never written to")
	_ = fs.Parse(args)
	if *conns < 1 || *queues < 1 || *msgs < 1 || *size < 16 || *size > wire.MaxBodySize {
		return errors.New("need -conns, -queues, -msgs ≥ 1 and 16 ≤ -size ≤ 16000")
	}
	if *storeURL != "" && !*cluster {
		return errors.New("-store goes with -cluster")
	}
	if len(rates)+len(fractions) > 0 && (*lockstep || *cluster) {
		return errors.New("-rate and -rate-fraction pace SENDs open loop: they go neither with -lockstep nor with -cluster")
	}
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	if *cluster {
		if t.addr != "" || *viaProxy {
			return errors.New("-cluster spawns its relays: it does not go with -addr or -proxy")
		}
		if *conns < 2 || *conns%2 != 0 {
			return errors.New("-cluster needs an even -conns (connection i goes to process i%2; queue i's recipient is connection i%conns and its sender the next one, on the other process)")
		}
		return runCluster(clusterConfig{relayBin: t.bin, storeURL: *storeURL, conns: *conns, queues: *queues, msgs: *msgs, size: *size, lockstep: *lockstep})
	}
	var destMetrics string
	if *viaProxy && t.spawn {
		port, err := freeLoopbackPort()
		if err != nil {
			return err
		}
		destMetrics = fmt.Sprintf("127.0.0.1:%d", port)
		t.extra = []string{"-metrics", destMetrics}
	}
	addr, stop, err := t.start()
	if err != nil {
		return err
	}
	defer stop()
	var px *proxyRelay
	if *viaProxy {
		if px, err = startProxy(t.bin); err != nil {
			return fmt.Errorf("proxy: %w", err)
		}
		defer px.stop()
	}
	res := relayResult{Conns: *conns, Queues: *queues, Msgs: *msgs, Size: *size}
	total := *queues * *msgs
	cpu0, pcpu0 := t.process.cpu(), px.child().cpu()
	var proxyAddr *wire.Address
	if px != nil {
		proxyAddr = &px.addr
	}
	d, err := driveRelay([]wire.Address{addr}, proxyAddr, *conns, *queues, *msgs, *size, *lockstep, 0)
	if err != nil {
		return err
	}
	res.RelayCPUs = (t.process.cpu() - cpu0).Seconds()
	res.MsgsPerS = float64(total) / d.elapsed.Seconds()
	res.P50ms, res.P95ms, res.P99ms, res.Maxms = percentile(d.lats, 0.50), percentile(d.lats, 0.95), percentile(d.lats, 0.99), percentile(d.lats, 1)
	res.RSSBytes = t.process.rss()
	if px != nil {
		res.ProxyCPUs = (px.child().cpu() - pcpu0).Seconds()
		res.ProxyRSSBytes = px.child().rss()
		res.LimitRetries = d.limitRetries
		m, err := scrapeMetrics(px.metrics)
		if err != nil {
			return fmt.Errorf("proxy metrics: %w", err)
		}
		res.ProxyRoutesOpened = int64(m["wisp_relay_proxy_routes_opened_total"])
		res.ProxyForwarded = int64(m["wisp_relay_proxy_forwarded_total"])
		if res.ProxyForwarded > 0 {
			reuse := 1 - float64(res.ProxyRoutesOpened)/float64(res.ProxyForwarded)
			res.RouteReuse = &reuse
		}
		if destMetrics != "" {
			m, err := scrapeMetrics(destMetrics)
			if err != nil {
				return fmt.Errorf("destination metrics: %w", err)
			}
			res.DestForwardedIn = int64(m["wisp_relay_forwarded_in_total"])
		}
	}
	// The open-loop runs come after the figures above, which are the
	// closed run's alone.
	type pace struct{ rate, fraction float64 }
	var paces []pace
	for _, f := range fractions {
		paces = append(paces, pace{f * res.MsgsPerS, f})
	}
	for _, r := range rates {
		paces = append(paces, pace{r, 0})
	}
	for _, p := range paces {
		cpu0, bcpu0 := t.process.cpu(), selfCPU()
		d, err := driveRelay([]wire.Address{addr}, proxyAddr, *conns, *queues, *msgs, *size, false, p.rate)
		if err != nil {
			return fmt.Errorf("paced run at %.0f msgs/s: %w", p.rate, err)
		}
		res.Paced = append(res.Paced, pacedRun{
			Fraction: p.fraction, Rate: p.rate, Msgs: total,
			MsgsPerS: float64(total) / d.elapsed.Seconds(),
			P50ms:    percentile(d.lats, 0.50), P95ms: percentile(d.lats, 0.95), P99ms: percentile(d.lats, 0.99), Maxms: percentile(d.lats, 1),
			SendLagP99ms: percentile(d.sendLags, 0.99), SendLagMaxms: percentile(d.sendLags, 1),
			RelayCPUs: (t.process.cpu() - cpu0).Seconds(), BenchCPUs: (selfCPU() - bcpu0).Seconds(),
		})
	}

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

	label := "relay (SEND→OK→MSG→ACK)"
	if px != nil {
		label = "relay via proxy (PFWD)"
	}
	fmt.Printf("%-28s %12s %10s %10s\n", "run", "msgs/s", "p50 ms", "p99 ms")
	fmt.Printf("%-28s %12.0f %10.2f %10.2f\n", label, res.MsgsPerS, res.P50ms, res.P99ms)
	fmt.Printf("%-28s %12.0f %10.2f %10.2f\n", "bare websocket echo", bps, res.BaselineP50ms, res.BaselineP99ms)
	fmt.Printf("conns=%d queues=%d msgs/queue=%d size=%d total=%d relay RSS=%.1f MiB relay CPU=%.2f s ratio=%.3f\n",
		*conns, *queues, *msgs, *size, total, float64(res.RSSBytes)/(1<<20), res.RelayCPUs, res.Ratio)
	line := fmt.Sprintf("send→deliver ms: p50=%.2f p95=%.2f p99=%.2f", res.P50ms, res.P95ms, res.P99ms)
	if px != nil {
		reuse := math.NaN()
		if res.RouteReuse != nil {
			reuse = *res.RouteReuse
		}
		line += fmt.Sprintf("; proxy: route reuse=%.4f%% (routes opened=%d, forwarded=%d) destination forwarded_in=%d proxy RSS=%.1f MiB proxy CPU=%.2f s LIMIT retries=%d",
			100*reuse, res.ProxyRoutesOpened, res.ProxyForwarded, res.DestForwardedIn, float64(res.ProxyRSSBytes)/(1<<20), res.ProxyCPUs, res.LimitRetries)
	}
	fmt.Println(line)
	if len(res.Paced) > 0 {
		fmt.Printf("%-28s %12s %10s %10s %10s %10s %10s %12s %12s\n", "open loop (send→deliver)", "msgs/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "lag p99", "relay CPU s", "bench CPU s")
		for _, p := range res.Paced {
			name := fmt.Sprintf("%.0f msgs/s", p.Rate)
			if p.Fraction > 0 {
				name = fmt.Sprintf("%.0f%% of peak (%.0f/s)", 100*p.Fraction, p.Rate)
			}
			fmt.Printf("%-28s %12.0f %10.2f %10.2f %10.2f %10.2f %10.2f %12.2f %12.2f\n", name, p.MsgsPerS, p.P50ms, p.P95ms, p.P99ms, p.Maxms, p.SendLagP99ms, p.RelayCPUs, p.BenchCPUs)
		}
	}
	return printJSON(res)
}

// proxyRelay is the relay spawned as the senders' proxy (relay -proxy).
type proxyRelay struct {
	process *child
	addr    wire.Address
	metrics string // host:port of its /metrics
	cleanup func()
}

// startProxy spawns wisp-relay (found like -spawn's) as a proxy that
// may reach loopback destinations, with its metrics on a free port.
func startProxy(given string) (*proxyRelay, error) {
	bin, err := relayBin(given)
	if err != nil {
		return nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	metrics := fmt.Sprintf("127.0.0.1:%d", port)
	c, line, cleanup, err := spawnRelayProcess(bin, nil, "-proxy-private", "-metrics", metrics)
	if err != nil {
		return nil, err
	}
	addr, err := wire.ParseAddress(line)
	if err == nil && !addr.IsLoopback() {
		err = errors.New("the proxy's address is not a loopback one")
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	return &proxyRelay{process: c, addr: addr, metrics: metrics, cleanup: cleanup}, nil
}

func (p *proxyRelay) child() *child {
	if p == nil {
		return nil
	}
	return p.process
}

func (p *proxyRelay) stop() { p.cleanup() }

// freeLoopbackPort returns a TCP port free on 127.0.0.1 a moment ago.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// scrapeMetrics reads a relay's Prometheus text metrics (the ones
// without labels) from host:port.
func scrapeMetrics(hostport string) (map[string]float64, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + hostport + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	m := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") || strings.Contains(f[0], "{") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			m[f[0]] = v
		}
	}
	return m, sc.Err()
}

type benchQueue struct {
	sub    client.Subscription
	sndID  wire.QueueID
	sndKey ed25519.PrivateKey
	sender *client.Client
}

// driveResult is what driveRelay measured.
type driveResult struct {
	lats         []time.Duration // SEND→MSG (paced: from the scheduled time)
	elapsed      time.Duration   // first SEND to last MSG
	sendLags     []time.Duration // paced: each SEND's start after its scheduled time
	limitRetries int64           // PFWDs refused by the proxy with LIMIT and sent again
}

// driveRelay runs the end-to-end load and returns SEND→MSG latencies.
// Connection i dials addrs[i%len(addrs)]: several addresses are
// processes of one relay (-cluster). Queue i is created and received on
// connection i%nconns and sent to by connection (i+1)%nconns. With proxy
// (one address only), the senders are nconns more connections to the proxy
// relay, each holding one queue there, that secure and send through it
// (SPEC §12); the recipients stay on addr either way. With lockstep, a
// queue's next SEND waits for the previous message's MSG and ACK. With
// rate > 0 (not with lockstep), SENDs are paced open loop instead: the
// k-th of all nqueues×msgs is scheduled at k/rate seconds, to queue
// k%nqueues, and started then (on a goroutine of its own) whatever the
// earlier ones are doing; its body carries the scheduled time, so the
// latency counts any delay in starting it.
func driveRelay(addrs []wire.Address, proxy *wire.Address, nconns, nqueues, msgs, size int, lockstep bool, rate float64) (driveResult, error) {
	var res driveResult
	if len(addrs) == 0 || proxy != nil && len(addrs) != 1 {
		return res, errors.New("driveRelay: one address with a proxy, at least one without")
	}
	addr := addrs[0] // the destination of forwarded commands (proxy)
	ctx, cancel := timeout(10 * time.Minute)
	defer cancel()
	cs := make([]*client.Client, nconns)
	for i := range cs {
		c, err := client.Dial(ctx, addrs[i%len(addrs)], client.Options{EventBuffer: 4096})
		if err != nil {
			return res, err
		}
		defer c.Close()
		cs[i] = c
	}
	senders := cs
	if proxy != nil {
		senders = make([]*client.Client, nconns)
		var dial errGroup
		for i := range senders {
			c, err := client.Dial(ctx, *proxy, client.Options{})
			if err != nil {
				return res, fmt.Errorf("proxy: %w", err)
			}
			defer c.Close()
			senders[i] = c
			// A queue on the proxy makes this session one of its own
			// clients, allowed to forward.
			dial.Go(func() error {
				keys, err := client.NewRecipientKeys()
				if err != nil {
					return err
				}
				if _, err := c.New(ctx, keys, nil); err != nil {
					return fmt.Errorf("NEW on the proxy: %w", err)
				}
				return nil
			})
		}
		if err := dial.Wait(); err != nil {
			return res, err
		}
	}
	qs := make([]*benchQueue, nqueues)
	subs := make([][]client.Subscription, nconns)
	var setup errGroup
	for i := range qs {
		setup.Go(func() error {
			owner, sender := cs[i%nconns], senders[(i+1)%nconns]
			keys, err := client.NewRecipientKeys()
			if err != nil {
				return err
			}
			info, err := owner.New(ctx, keys, nil)
			if err != nil {
				return fmt.Errorf("NEW: %w", err)
			}
			_, sk, _ := ed25519.GenerateKey(rand.Reader)
			qs[i] = &benchQueue{sub: info.Subscription(keys), sndID: info.SndID, sndKey: sk, sender: sender}
			if proxy == nil {
				if err := sender.Secure(ctx, info.SndID, sk); err != nil {
					return fmt.Errorf("SKEY: %w", err)
				}
			}
			return nil
		})
	}
	if err := setup.Wait(); err != nil {
		return res, err
	}
	if proxy != nil {
		// SKEY through the proxy: first one queue per sender, so that
		// each sender asks the proxy for its route once (concurrent first
		// forwards would each send PRXY, budgeted per session), then the
		// rest at once.
		skey := func(from, to int) error {
			var g errGroup
			for _, q := range qs[from:to] {
				g.Go(func() error {
					if err := q.sender.ProxySecure(ctx, addr, q.sndID, q.sndKey); err != nil {
						return fmt.Errorf("SKEY through the proxy: %w", err)
					}
					return nil
				})
			}
			return g.Wait()
		}
		first := min(nconns, nqueues)
		if err := skey(0, first); err != nil {
			return res, err
		}
		if err := skey(first, nqueues); err != nil {
			return res, err
		}
	}
	for i, q := range qs {
		subs[i%nconns] = append(subs[i%nconns], q.sub)
	}
	byID := make(map[wire.QueueID]client.Subscription, nqueues)
	index := make(map[wire.QueueID]int, nqueues)
	delivered := make([]chan struct{}, nqueues) // lockstep: the queue's message was delivered and acknowledged
	for i, q := range qs {
		index[q.sub.RcvID] = i
		delivered[i] = make(chan struct{}, 1)
	}
	for i, c := range cs {
		for _, err := range c.Subscribe(ctx, subs[i]...) {
			if err != nil {
				return res, fmt.Errorf("SUB: %w", err)
			}
		}
		for _, s := range subs[i] {
			byID[s.RcvID] = s
		}
	}

	total := int64(nqueues * msgs)
	var received, limitRetries atomic.Int64
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
					go func() {
						_ = c.Ack(ctx, byID[ev.RcvID], ev.Message.ID)
						if lockstep {
							delivered[index[ev.RcvID]] <- struct{}{}
						}
					}()
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
	sendOne := func(q *benchQueue, body []byte) error {
		if proxy != nil {
			return q.sender.ProxySend(ctx, addr, q.sndID, q.sndKey, body)
		}
		return q.sender.Send(ctx, q.sndID, q.sndKey, body)
	}
	// sendRetrying sends body, stamped with the time it is measured
	// from (at, or the time of each attempt when at is zero).
	sendRetrying := func(q *benchQueue, body []byte, at time.Time) error {
		for attempt := 0; ; attempt++ {
			stamp := at
			if stamp.IsZero() {
				stamp = time.Now()
			}
			binary.BigEndian.PutUint64(body, uint64(stamp.UnixNano()))
			err := sendOne(q, body)
			if errors.Is(err, wire.CodeQuota) && attempt < 1000 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			// The proxy's PFWD budget per session (3,000 a minute):
			// the message was not forwarded.
			if re := (*client.RouteError)(nil); errors.As(err, &re) && re.Code == wire.CodeLimit && attempt < 1000 {
				limitRetries.Add(1)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if err != nil {
				return fmt.Errorf("SEND: %w", err)
			}
			return nil
		}
	}
	start := time.Now()
	var send errGroup
	if rate > 0 {
		// At most this many SENDs at once: beyond, the schedule slips
		// and the slip shows in the latencies and send lags.
		inFlight := make(chan struct{}, 1<<16)
		lags := make([]time.Duration, total)
		for k := range total {
			at := start.Add(time.Duration(float64(k) * float64(time.Second) / rate))
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
			select {
			case inFlight <- struct{}{}:
			case <-ctx.Done():
				return res, ctx.Err()
			}
			lags[k] = time.Since(at)
			q := qs[int(k)%nqueues]
			send.Go(func() error {
				defer func() { <-inFlight }()
				return sendRetrying(q, make([]byte, size), at)
			})
		}
		res.sendLags = lags
	} else {
		for i, q := range qs {
			send.Go(func() error {
				for range msgs {
					if err := sendRetrying(q, make([]byte, size), time.Time{}); err != nil {
						return err
					}
					if lockstep {
						select {
						case <-delivered[i]:
						case <-ctx.Done():
							return ctx.Err()
						}
					}
				}
				return nil
			})
		}
	}
	if err := send.Wait(); err != nil {
		return res, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return res, fmt.Errorf("only %d of %d messages delivered", received.Load(), total)
	}
	res.elapsed = time.Since(start)
	recv.Wait()
	for _, l := range lats {
		res.lats = append(res.lats, l...)
	}
	res.limitRetries = limitRetries.Load()
	return res, nil
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
