package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/wire"
)

// runBareServer is the baseline: a plain coder/websocket server that
// echoes every message, with nothing else.
func runBareServer() error {
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	return serveBare(wire.BlockSize, func(typ websocket.MessageType, b []byte) (websocket.MessageType, []byte) { return typ, b })
}

// serveBare runs a plain coder/websocket server on a loopback port until
// SIGTERM: it answers every message, read one at a time on each
// connection, with what answer returns. It prints its address first.
func serveBare(readLimit int64, answer func(websocket.MessageType, []byte) (websocket.MessageType, []byte)) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(readLimit)
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			typ, b = answer(typ, b)
			if err := c.Write(r.Context(), typ, b); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("bare address: %s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	return srv.Close()
}

// echoBaseline drives the bare server with conns connections, total
// messages of BlockSize bytes, and inFlight messages outstanding overall.
func echoBaseline(addr string, conns, total, inFlight int) (msgsPerS float64, lat []time.Duration, err error) {
	ctx, cancel := timeout(5 * time.Minute)
	defer cancel()
	wss := make([]*websocket.Conn, conns)
	for i := range wss {
		if wss[i], _, err = websocket.Dial(ctx, "ws://"+addr+"/", nil); err != nil {
			return 0, nil, err
		}
		wss[i].SetReadLimit(wire.BlockSize)
		defer wss[i].CloseNow()
	}
	window := max(1, inFlight/conns)
	lats := make([][]time.Duration, conns)
	errs := make(chan error, conns)
	start := time.Now()
	var wg sync.WaitGroup
	for i, ws := range wss {
		n := total / conns
		if i < total%conns {
			n++
		}
		wg.Go(func() {
			sem := make(chan struct{}, window)
			go func() {
				block := make([]byte, wire.BlockSize)
				for range n {
					sem <- struct{}{}
					binary.BigEndian.PutUint64(block, uint64(time.Now().UnixNano()))
					if err := ws.Write(ctx, websocket.MessageBinary, block); err != nil {
						return
					}
				}
			}()
			for range n {
				_, b, err := ws.Read(ctx)
				if err != nil {
					errs <- err
					return
				}
				lats[i] = append(lats[i], time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(b)))))
				<-sem
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return 0, nil, err
	default:
	}
	for _, l := range lats {
		lat = append(lat, l...)
	}
	return float64(total) / elapsed.Seconds(), lat, nil
}
