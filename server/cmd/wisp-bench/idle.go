package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/wire/client"
)

type idleResult struct {
	Conns             int     `json:"conns"`
	RelayBytesPerConn float64 `json:"relay_bytes_per_conn"`
	BareBytesPerConn  float64 `json:"bare_bytes_per_conn"`
	RelayRSSBytes     int64   `json:"rss_bytes"`
	BareRSSBytes      int64   `json:"baseline_rss_bytes"`
	Ratio             float64 `json:"ratio"`
	// The connect phase, -workers sessions at a time: on the relay each
	// session dials (WebSocket and handshake), sends NEW, then SUB; on
	// the bare server it only dials (WebSocket). Wall time until all
	// -conns are done, CPU seconds of the server and of wisp-bench over
	// that time, and each step's latency per session.
	Workers          int     `json:"workers"`
	KeygenS          float64 `json:"keygen_s"` // recipient keys, generated before the connect phase
	ConnectS         float64 `json:"connect_s"`
	ConnectPerS      float64 `json:"connect_sessions_per_s"`
	ConnectCPUs      float64 `json:"connect_relay_cpu_s"`
	ConnectBenchCPUs float64 `json:"connect_bench_cpu_s"`
	DialP50ms        float64 `json:"dial_p50_ms"`
	DialP99ms        float64 `json:"dial_p99_ms"`
	NewP50ms         float64 `json:"new_p50_ms"`
	NewP99ms         float64 `json:"new_p99_ms"`
	SubP50ms         float64 `json:"sub_p50_ms"`
	SubP99ms         float64 `json:"sub_p99_ms"`
	BareConnectS     float64 `json:"baseline_connect_s"`
	BareConnectCPUs  float64 `json:"baseline_connect_server_cpu_s"`
	BareBenchCPUs    float64 `json:"baseline_connect_bench_cpu_s"`
	BareDialP50ms    float64 `json:"baseline_dial_p50_ms"`
	BareDialP99ms    float64 `json:"baseline_dial_p99_ms"`
	ConnectRatio     float64 `json:"connect_ratio"` // connect_s / baseline_connect_s
	PerfData         string  `json:"perf_data,omitempty"`
}

// settle waits for a server's RSS to stop growing.
func settle(c *child) int64 {
	prev := c.rss()
	for range 20 {
		time.Sleep(500 * time.Millisecond)
		cur := c.rss()
		if cur-prev < 256<<10 && prev-cur < 256<<10 {
			return cur
		}
		prev = cur
	}
	return prev
}

// parallel runs f(i) for i in [0, n) on workers goroutines.
func parallel(n, workers int, f func(i int) error) error {
	var g errGroup
	next := make(chan int)
	for range max(1, workers) {
		g.Go(func() error {
			for i := range next {
				if err := f(i); err != nil {
					// Keep draining so that the feeder ends.
					for range next {
					}
					return err
				}
			}
			return nil
		})
	}
	go func() {
		defer close(next)
		for i := range n {
			next <- i
		}
	}()
	return g.Wait()
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		return 0
	}
	return st.cpu
}

// ms is a duration in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	var t target
	t.flags(fs)
	n := fs.Int("conns", 10000, "idle subscribed connections")
	workers := fs.Int("workers", 64, "sessions connecting at once (connect phase), on the relay and on the bare server")
	perfOut := fs.String("perf", "", "record the relay's CPU profile during the connect phase with perf record -g into this file (needs perf; read it with perf report -i FILE)")
	_ = fs.Parse(args)
	if *n < 1 || *n > 15000 {
		return errors.New("-conns must be 1-15000 (one process holds all client sockets)")
	}
	if *workers < 1 {
		return errors.New("-workers must be at least 1")
	}
	*workers = min(*workers, *n)
	lim, err := raiseFileLimit()
	if err != nil {
		return err
	}
	if lim < uint64(*n)+256 {
		return fmt.Errorf("RLIMIT_NOFILE is %d, too low for %d connections", lim, *n)
	}
	if !t.spawn {
		return errors.New("idle mode measures the relay's memory, so it needs -spawn")
	}
	addr, stop, err := t.start()
	if err != nil {
		return err
	}
	defer stop()
	res := idleResult{Conns: *n, Workers: *workers}

	// Each client generates its keys on its own device: not part of what
	// the relay's connect time is compared on.
	t0 := time.Now()
	keys := make([]client.RecipientKeys, *n)
	if err := parallel(*n, runtime.NumCPU(), func(i int) (err error) {
		keys[i], err = client.NewRecipientKeys()
		return err
	}); err != nil {
		return err
	}
	res.KeygenS = time.Since(t0).Seconds()

	before := settle(t.process)
	clients := make([]*client.Client, *n)
	dial, newT, sub := make([]time.Duration, *n), make([]time.Duration, *n), make([]time.Duration, *n)
	var mu sync.Mutex
	var perf *exec.Cmd
	if *perfOut != "" {
		if perf, err = startPerf(t.process.cmd.Process.Pid, *perfOut); err != nil {
			return err
		}
		res.PerfData = *perfOut
	}
	cpu0, bcpu0, start := t.process.cpu(), selfCPU(), time.Now()
	err = parallel(*n, *workers, func(i int) error {
		ctx, cancel := timeout(time.Minute)
		defer cancel()
		t0 := time.Now()
		c, err := client.Dial(ctx, addr, client.Options{})
		if err != nil {
			return err
		}
		mu.Lock()
		clients[i] = c
		mu.Unlock()
		t1 := time.Now()
		info, err := c.New(ctx, keys[i], nil)
		if err != nil {
			return err
		}
		t2 := time.Now()
		err = c.Subscribe(ctx, info.Subscription(keys[i]))[0]
		dial[i], newT[i], sub[i] = t1.Sub(t0), t2.Sub(t1), time.Since(t2)
		return err
	})
	elapsed := time.Since(start)
	res.ConnectCPUs, res.ConnectBenchCPUs = (t.process.cpu() - cpu0).Seconds(), (selfCPU() - bcpu0).Seconds()
	if perf != nil {
		stopPerf(perf)
	}
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	if err != nil {
		return fmt.Errorf("opening relay connections: %w", err)
	}
	res.ConnectS = elapsed.Seconds()
	res.ConnectPerS = float64(*n) / res.ConnectS
	res.DialP50ms, res.DialP99ms = percentile(dial, 0.50), percentile(dial, 0.99)
	res.NewP50ms, res.NewP99ms = percentile(newT, 0.50), percentile(newT, 0.99)
	res.SubP50ms, res.SubP99ms = percentile(sub, 0.50), percentile(sub, 0.99)
	res.RelayRSSBytes = settle(t.process)
	res.RelayBytesPerConn = float64(res.RelayRSSBytes-before) / float64(*n)
	for i, c := range clients {
		_ = c.Close()
		clients[i] = nil
	}

	bare, baddr, err := startBare()
	if err != nil {
		return err
	}
	defer bare.stop()
	before = settle(bare)
	wss := make([]*websocket.Conn, *n)
	bdial := make([]time.Duration, *n)
	cpu0, bcpu0, start = bare.cpu(), selfCPU(), time.Now()
	err = parallel(*n, *workers, func(i int) error {
		ctx, cancel := timeout(time.Minute)
		defer cancel()
		t0 := time.Now()
		ws, _, err := websocket.Dial(ctx, "ws://"+baddr+"/", nil)
		if err != nil {
			return err
		}
		bdial[i] = time.Since(t0)
		mu.Lock()
		wss[i] = ws
		mu.Unlock()
		return nil
	})
	elapsed = time.Since(start)
	res.BareConnectCPUs, res.BareBenchCPUs = (bare.cpu() - cpu0).Seconds(), (selfCPU() - bcpu0).Seconds()
	defer func() {
		for _, ws := range wss {
			if ws != nil {
				_ = ws.CloseNow()
			}
		}
	}()
	if err != nil {
		return fmt.Errorf("opening bare connections: %w", err)
	}
	res.BareConnectS = elapsed.Seconds()
	res.BareDialP50ms, res.BareDialP99ms = percentile(bdial, 0.50), percentile(bdial, 0.99)
	res.ConnectRatio = res.ConnectS / res.BareConnectS
	res.BareRSSBytes = settle(bare)
	res.BareBytesPerConn = float64(res.BareRSSBytes-before) / float64(*n)
	res.Ratio = res.RelayBytesPerConn / res.BareBytesPerConn
	runtime.KeepAlive(wss)

	fmt.Printf("%-34s %14s %12s %10s %12s %12s\n", "server", "KiB per conn", "RSS MiB", "connect s", "server CPU s", "bench CPU s")
	fmt.Printf("%-34s %14.1f %12.1f %10.2f %12.2f %12.2f\n", "relay (idle, 1 subscribed queue)", res.RelayBytesPerConn/1024, float64(res.RelayRSSBytes)/(1<<20),
		res.ConnectS, res.ConnectCPUs, res.ConnectBenchCPUs)
	fmt.Printf("%-34s %14.1f %12.1f %10.2f %12.2f %12.2f\n", "bare coder/websocket server", res.BareBytesPerConn/1024, float64(res.BareRSSBytes)/(1<<20),
		res.BareConnectS, res.BareConnectCPUs, res.BareBenchCPUs)
	fmt.Printf("connect per session ms (p50/p99): relay dial+handshake %.1f/%.1f, NEW %.1f/%.1f, SUB %.1f/%.1f; bare dial %.1f/%.1f\n",
		res.DialP50ms, res.DialP99ms, res.NewP50ms, res.NewP99ms, res.SubP50ms, res.SubP99ms, res.BareDialP50ms, res.BareDialP99ms)
	fmt.Printf("conns=%d workers=%d ratio=%.2f connect: %.0f sessions/s, %.2fx the bare server's time (keys generated before, in %.2f s)\n",
		*n, *workers, res.Ratio, res.ConnectPerS, res.ConnectRatio, res.KeygenS)
	return printJSON(res)
}

// startPerf starts perf record -g on process pid, writing to out, and
// waits until it has started writing.
func startPerf(pid int, out string) (*exec.Cmd, error) {
	bin, err := exec.LookPath("perf")
	if err != nil {
		return nil, errors.New("-perf: perf not found")
	}
	_ = os.Remove(out)
	cmd := exec.Command(bin, "record", "-g", "-F", "999", "-p", strconv.Itoa(pid), "-o", out)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("-perf: %w", err)
	}
	for range 100 {
		if fileExists(out) {
			time.Sleep(200 * time.Millisecond)
			return cmd, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, errors.New("-perf: perf record did not start")
}

// stopPerf ends perf record, which then writes its file.
func stopPerf(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
