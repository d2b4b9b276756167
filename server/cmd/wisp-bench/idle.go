package main

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"sync"
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

// parallel runs f(i) for i in [0, n) on a bounded number of workers.
func parallel(n int, f func(i int) error) error {
	var g errGroup
	next := make(chan int)
	for range 64 {
		g.Go(func() error {
			for i := range next {
				if err := f(i); err != nil {
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

func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	var t target
	t.flags(fs)
	n := fs.Int("conns", 10000, "idle subscribed connections")
	_ = fs.Parse(args)
	if *n < 1 || *n > 15000 {
		return errors.New("-conns must be 1-15000 (one process holds all client sockets)")
	}
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
	res := idleResult{Conns: *n}

	before := settle(t.process)
	clients := make([]*client.Client, *n)
	var mu sync.Mutex
	err = parallel(*n, func(i int) error {
		ctx, cancel := timeout(time.Minute)
		defer cancel()
		c, err := client.Dial(ctx, addr, client.Options{})
		if err != nil {
			return err
		}
		mu.Lock()
		clients[i] = c
		mu.Unlock()
		keys, err := client.NewRecipientKeys()
		if err != nil {
			return err
		}
		info, err := c.New(ctx, keys, nil)
		if err != nil {
			return err
		}
		return c.Subscribe(ctx, info.Subscription(keys))[0]
	})
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
	err = parallel(*n, func(i int) error {
		ctx, cancel := timeout(time.Minute)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws://"+baddr+"/", nil)
		if err != nil {
			return err
		}
		mu.Lock()
		wss[i] = ws
		mu.Unlock()
		return nil
	})
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
	res.BareRSSBytes = settle(bare)
	res.BareBytesPerConn = float64(res.BareRSSBytes-before) / float64(*n)
	res.Ratio = res.RelayBytesPerConn / res.BareBytesPerConn
	runtime.KeepAlive(wss)

	fmt.Printf("%-34s %14s %12s\n", "server", "KiB per conn", "RSS MiB")
	fmt.Printf("%-34s %14.1f %12.1f\n", "relay (idle, 1 subscribed queue)", res.RelayBytesPerConn/1024, float64(res.RelayRSSBytes)/(1<<20))
	fmt.Printf("%-34s %14.1f %12.1f\n", "bare coder/websocket server", res.BareBytesPerConn/1024, float64(res.BareRSSBytes)/(1<<20))
	fmt.Printf("conns=%d ratio=%.2f\n", *n, res.Ratio)
	return printJSON(res)
}
