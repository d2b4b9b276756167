package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// TestRelayDrainsOnSIGTERM: SIGTERM while SENDs and chunk uploads are in
// flight. The relay used to close its stores while commands were still
// running, answering them INTERNAL ("store: closed" / "database not open"
// in the log). Now the commands in progress finish before the stores
// close: a SEND or FPUT either gets OK or loses its connection, never an
// error from a closed store, and everything that got OK is there after a
// restart.
func TestRelayDrainsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const (
		clients   = 4
		perClient = 16 // senders, one queue each
		maxSends  = 100
		uploaders = 8 // each on its own file session
		maxChunks = 20
	)
	bin := build(t)
	data := filepath.Join(t.TempDir(), "data")
	p := start(t, bin, "-listen", "127.0.0.1:0", "-data", data)
	ctx, cancel := context.WithTimeout(context.Background(), scaled(120*time.Second))
	defer cancel()

	type sender struct {
		sub  client.Subscription
		snd  wire.QueueID
		key  ed25519.PrivateKey
		ok   int
		err  error
		conn *client.Client
	}
	var senders []*sender
	for range clients {
		c, err := client.Dial(ctx, p.addr, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for range perClient {
			keys, _ := client.NewRecipientKeys()
			q, err := c.New(ctx, keys, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, sk, _ := ed25519.GenerateKey(rand.Reader)
			if err := c.Secure(ctx, q.SndID, sk); err != nil {
				t.Fatal(err)
			}
			senders = append(senders, &sender{sub: q.Subscription(keys), snd: q.SndID, key: sk, conn: c})
		}
	}

	type uploader struct {
		fc   *client.FileClient
		done []client.RecipientChunk // uploads answered OK
		data [][]byte
		err  error
	}
	var ups []*uploader
	for range uploaders {
		fc, err := client.DialFiles(ctx, p.addr, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer fc.Close()
		ups = append(ups, &uploader{fc: fc})
	}

	// Every sender keeps one SEND in flight, every uploader one FNEW or
	// FPUT, until its first failure.
	sctx, stopSends := context.WithCancel(ctx)
	defer stopSends()
	var total, chunks atomic.Int64
	var wg sync.WaitGroup
	for _, u := range ups {
		wg.Go(func() {
			for len(u.done) < maxChunks {
				snd, rcpts, err := u.fc.CreateChunk(sctx, wire.Class256K, 1, nil)
				if err != nil {
					u.err = err
					return
				}
				chunk := make([]byte, wire.Class256K.Size())
				_, _ = rand.Read(chunk)
				if u.err = u.fc.Upload(sctx, snd, chunk); u.err != nil {
					return
				}
				u.done, u.data = append(u.done, rcpts[0]), append(u.data, chunk)
				chunks.Add(1)
			}
		})
	}
	for _, s := range senders {
		wg.Go(func() {
			for s.ok < maxSends {
				if s.err = s.conn.Send(sctx, s.snd, s.key, []byte(fmt.Sprintf("message %d", s.ok))); s.err != nil {
					return
				}
				s.ok++
				total.Add(1)
			}
		})
	}
	waitUntil(t, "SENDs and uploads flowing", func() bool { return total.Load() >= 200 && chunks.Load() >= 2*uploaders })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, p.stderr)
		}
	case <-time.After(scaled(30 * time.Second)):
		t.Fatal("no exit after SIGTERM")
	}
	stopSends() // SENDs waiting for a reconnection
	wg.Wait()

	sent, uploaded, lost := 0, 0, 0
	check := func(what string, err error) {
		var code wire.ErrCode
		switch {
		case err == nil:
		case errors.As(err, &code):
			t.Errorf("%s in flight at shutdown got relay error %v", what, err)
		case errors.Is(err, client.ErrConnectionLost):
			lost++
		case errors.Is(err, context.Canceled):
		default:
			// A file session reports a lost connection in its own words.
			t.Logf("%s: %v", what, err)
		}
	}
	for _, s := range senders {
		sent += s.ok
		check("a SEND", s.err)
	}
	for _, u := range ups {
		uploaded += len(u.done)
		check("a chunk upload", u.err)
	}
	log := p.stderr.String()
	for _, bad := range []string{"store: closed", "database not open", "level=ERROR"} {
		if strings.Contains(log, bad) {
			t.Errorf("log has %q: %s", bad, log)
		}
	}
	t.Logf("%d SENDs and %d uploads answered OK, %d commands in flight lost their connection at SIGTERM", sent, uploaded, lost)

	// Every SEND answered OK is stored.
	p2 := start(t, bin, "-listen", "127.0.0.1:0", "-data", data)
	c, err := client.Dial(ctx, p2.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	for _, s := range senders {
		wg.Go(func() {
			n := 0
			for {
				m, ok, err := c.Get(ctx, s.sub)
				if err == nil && ok {
					err = c.Ack(ctx, s.sub, m.ID)
				}
				if err != nil || !ok {
					mu.Lock()
					defer mu.Unlock()
					if err != nil || n < s.ok {
						t.Errorf("queue holds %d messages (%v), %d were answered OK", n, err, s.ok)
					}
					return
				}
				n++
			}
		})
	}
	fc, err := client.DialFiles(ctx, p2.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	for _, u := range ups {
		for i, r := range u.done {
			got, err := fc.Download(ctx, r)
			if err != nil || !bytes.Equal(got, u.data[i]) {
				t.Errorf("an upload answered OK is not stored: %v", err)
			}
		}
	}
	wg.Wait()
	p2.stop(t)
}
