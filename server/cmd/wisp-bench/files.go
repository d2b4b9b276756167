package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

type filesResult struct {
	UploadMBps           float64 `json:"upload_mb_per_s"`
	DownloadMBps         float64 `json:"download_mb_per_s"`
	RelayMBps            float64 `json:"relay_mb_per_s"`
	BaselineMBps         float64 `json:"baseline_mb_per_s"`
	BaselineUploadMBps   float64 `json:"baseline_upload_mb_per_s"`
	BaselineDownloadMBps float64 `json:"baseline_download_mb_per_s"`
	Ratio                float64 `json:"ratio"`
	Size                 int64   `json:"size"`
	ChunkBytes           int     `json:"chunk_bytes"`
	Chunks               int     `json:"chunks"`
	InFlight             int     `json:"inflight"`
	RelayCPUs            float64 `json:"relay_cpu_s"`
	RSSBytes             int64   `json:"rss_bytes"`
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

func runFiles(args []string) error {
	fs := flag.NewFlagSet("files", flag.ExitOnError)
	var t target
	t.flags(fs)
	size := fs.Int64("size", 100<<20, "bytes to upload and download (rounded up to whole chunks)")
	chunk := fs.Int("chunk", 1<<20, "chunk size: 65536, 262144, 1048576 or 4194304")
	inflight := fs.Int("inflight", 4, "chunks in flight on the one connection")
	_ = fs.Parse(args)
	class, err := wire.ClassFor(*chunk)
	if err != nil || class.Size() != *chunk {
		return errors.New("-chunk must be 65536, 262144, 1048576 or 4194304")
	}
	if *size < 1 || *inflight < 1 {
		return errors.New("need -size ≥ 1 and -inflight ≥ 1")
	}
	n := int((*size + int64(*chunk) - 1) / int64(*chunk))
	res := filesResult{Size: int64(n) * int64(*chunk), ChunkBytes: *chunk, Chunks: n, InFlight: *inflight}
	addr, stop, err := t.start()
	if err != nil {
		return err
	}
	defer stop()
	cpu0 := t.process.cpu()
	up, down, err := driveFiles(addr, class, n, *inflight)
	if err != nil {
		return err
	}
	res.RelayCPUs = (t.process.cpu() - cpu0).Seconds()
	res.RSSBytes = t.process.rss()
	res.UploadMBps, res.DownloadMBps = mbps(res.Size, up), mbps(res.Size, down)
	res.RelayMBps = mbps(2*res.Size, up+down)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	bare, baddr, err := startChild(nil, self, "bare address: ", "bare-files-server")
	if err != nil {
		return err
	}
	defer bare.stop()
	bup, bdown, err := bareFiles(baddr, *chunk, n, *inflight)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	res.BaselineUploadMBps, res.BaselineDownloadMBps = mbps(res.Size, bup), mbps(res.Size, bdown)
	res.BaselineMBps = mbps(2*res.Size, bup+bdown)
	res.Ratio = res.RelayMBps / res.BaselineMBps

	fmt.Printf("%-34s %10s %10s\n", "run (MB = 10^6 bytes)", "MB/s", "seconds")
	fmt.Printf("%-34s %10.1f %10.2f\n", "relay upload (FNEW+FPUT, fsync)", res.UploadMBps, up.Seconds())
	fmt.Printf("%-34s %10.1f %10.2f\n", "relay download (FGET, re-sealed)", res.DownloadMBps, down.Seconds())
	fmt.Printf("%-34s %10.1f %10.2f\n", "bare websocket upload", res.BaselineUploadMBps, bup.Seconds())
	fmt.Printf("%-34s %10.1f %10.2f\n", "bare websocket download", res.BaselineDownloadMBps, bdown.Seconds())
	fmt.Printf("size=%d chunk=%d chunks=%d inflight=%d relay CPU=%.2f s relay RSS=%.1f MiB ratio=%.3f\n",
		res.Size, *chunk, n, *inflight, res.RelayCPUs, float64(res.RSSBytes)/(1<<20), res.Ratio)
	return printJSON(res)
}

// driveFiles uploads n random chunks (FNEW then FPUT each), downloads
// them all and checks the bytes, with inflight chunks in flight on one
// connection; it acknowledges them afterwards, untimed.
func driveFiles(addr wire.Address, class wire.ChunkClass, n, inflight int) (up, down time.Duration, err error) {
	ctx, cancel := timeout(10 * time.Minute)
	defer cancel()
	c, err := client.DialFiles(ctx, addr, client.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	data := make([][]byte, inflight)
	for i := range data {
		data[i] = make([]byte, class.Size())
		if _, err := rand.Read(data[i]); err != nil {
			return 0, 0, err
		}
	}
	rcpts := make([]client.RecipientChunk, n)
	start := time.Now()
	err = bounded(n, inflight, func(i int) error {
		s, r, err := c.CreateChunk(ctx, class, 1, nil)
		if err != nil {
			return fmt.Errorf("FNEW: %w", err)
		}
		rcpts[i] = r[0]
		if err := c.Upload(ctx, s, data[i%inflight]); err != nil {
			return fmt.Errorf("FPUT: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	up = time.Since(start)
	start = time.Now()
	err = bounded(n, inflight, func(i int) error {
		got, err := c.Download(ctx, rcpts[i])
		if err != nil {
			return fmt.Errorf("FGET: %w", err)
		}
		if !bytes.Equal(got, data[i%inflight]) {
			return errors.New("downloaded other bytes")
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	down = time.Since(start)
	err = bounded(n, inflight, func(i int) error { return c.Ack(ctx, rcpts[i]) })
	return up, down, err
}

// bounded runs f(0..n-1) with at most k at once and returns the first
// error.
func bounded(n, k int, f func(i int) error) error {
	next := make(chan int)
	errc := make(chan error, k)
	var wg sync.WaitGroup
	for range k {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for i := range n {
		select {
		case next <- i:
		case err = <-errc:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

// runBareFilesServer is the baseline of the files mode: a plain
// coder/websocket server. A message of 8 bytes asks for that many bytes
// back; any other message is answered with one byte.
func runBareFilesServer() error {
	blob := make([]byte, wire.MaxChunkSize)
	return serveBare(wire.MaxFrameSize, func(_ websocket.MessageType, b []byte) (websocket.MessageType, []byte) {
		if len(b) == 8 {
			return websocket.MessageBinary, blob[:min(int(binary.BigEndian.Uint64(b)), len(blob))]
		}
		return websocket.MessageBinary, []byte{1}
	})
}

// bareFiles moves n messages of size bytes up and then n down over one
// connection with inflight outstanding.
func bareFiles(addr string, size, n, inflight int) (up, down time.Duration, err error) {
	ctx, cancel := timeout(10 * time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		return 0, 0, err
	}
	defer ws.CloseNow()
	ws.SetReadLimit(wire.MaxFrameSize)
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	req := binary.BigEndian.AppendUint64(nil, uint64(size))
	phase := func(msg []byte, want int) (time.Duration, error) {
		sem := make(chan struct{}, inflight)
		errc := make(chan error, 1)
		start := time.Now()
		go func() {
			for range n {
				sem <- struct{}{}
				if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
					errc <- err
					return
				}
			}
		}()
		for range n {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return 0, err
			}
			if len(b) != want {
				return 0, fmt.Errorf("bare server answered %d bytes, want %d", len(b), want)
			}
			<-sem
		}
		select {
		case err := <-errc:
			return 0, err
		default:
		}
		return time.Since(start), nil
	}
	if up, err = phase(payload, 1); err != nil {
		return 0, 0, err
	}
	down, err = phase(req, size)
	return up, down, err
}
