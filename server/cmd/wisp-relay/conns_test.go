package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// openFDs counts the descriptors the process holds (Linux /proc).
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// waitUntil polls cond until it holds, failing after a generous bound.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(scaled(60 * time.Second))
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// plainGET sends a GET without upgrade on c and returns the status.
func plainGET(c net.Conn, r *bufio.Reader) (int, error) {
	if _, err := io.WriteString(c, "GET "+wire.EndpointPath+" HTTP/1.1\r\nHost: relay\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Body.Close()
}

// closedByRelay waits until the relay closes c: reads (of a refusal,
// if any) end with EOF.
func closedByRelay(c net.Conn, r io.Reader) error {
	_ = c.SetReadDeadline(time.Now().Add(scaled(60 * time.Second)))
	_, err := io.Copy(io.Discard, r)
	return err
}

// TestRelayClosesIdleHTTPConnections: connections that never send a
// request, and connections idle after a plain HTTP answer (426 to a GET
// without upgrade), are closed after -http-timeout. Before, the second
// kind stayed open forever (2,000 of them held 2,000 descriptors).
// WebSocket sessions outlive the timeout.
func TestRelayClosesIdleHTTPConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const n = 100 // of each kind
	p := start(t, build(t), "-listen", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "data"), "-http-timeout", "1s")
	addr := fmt.Sprintf("127.0.0.1:%d", p.addr.Port)
	ctx, cancel := context.WithTimeout(context.Background(), scaled(60*time.Second))
	defer cancel()

	// A queue session and a file session, idle for longer than the
	// timeout, still work on the same connection.
	c, err := client.Dial(ctx, p.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fc, err := client.DialFiles(ctx, p.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()

	base := openFDs(t, p.cmd.Process.Pid)
	type held struct {
		c net.Conn
		r *bufio.Reader
	}
	var conns []held
	for i := range 2 * n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		r := bufio.NewReader(nc)
		if i%2 == 0 {
			if code, err := plainGET(nc, r); err != nil || code != http.StatusUpgradeRequired {
				t.Fatalf("plain GET: %d %v", code, err)
			}
		}
		conns = append(conns, held{nc, r})
	}
	peak := openFDs(t, p.cmd.Process.Pid)
	for _, h := range conns {
		if err := closedByRelay(h.c, h.r); err != nil {
			t.Fatalf("idle connection not closed by the relay: %v", err)
		}
	}
	var after int
	waitUntil(t, "the relay's descriptors back to where they were", func() bool {
		after = openFDs(t, p.cmd.Process.Pid)
		return after <= base
	})
	t.Logf("relay descriptors: %d before, %d with %d idle HTTP connections open, %d after -http-timeout 1s", base, peak, 2*n, after)

	// The sessions have been idle for longer than the timeout.
	keys, _ := client.NewRecipientKeys()
	if _, err := c.New(ctx, keys, nil); err != nil {
		t.Fatalf("queue session after the timeout: %v", err)
	}
	if _, _, err := fc.CreateChunk(ctx, wire.Class64K, 1, nil); err != nil {
		t.Fatalf("file session after the timeout: %v", err)
	}
	for {
		select {
		case ev := <-c.Events():
			if ev.Kind == client.EventDisconnected {
				t.Fatalf("the queue session was dropped: %v", ev.Err)
			}
			continue
		default:
		}
		break
	}
	p.stop(t)
	if strings.Contains(p.stderr.String(), "127.0.0.1:") {
		t.Errorf("log mentions an address: %s", p.stderr)
	}
}

// TestRelayMaxConns: -max-conns counts every TCP connection, queue and
// file sessions and plain HTTP alike. One more gets a 503 at once; a slot
// frees when a session ends, and a flood of idle connections holds the
// slots only until -http-timeout.
func TestRelayMaxConns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	p := start(t, build(t), "-listen", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "data"), "-max-conns", "4", "-http-timeout", "2s")
	addr := fmt.Sprintf("127.0.0.1:%d", p.addr.Port)
	ctx, cancel := context.WithTimeout(context.Background(), scaled(120*time.Second))
	defer cancel()

	// Four sessions, two per endpoint, fill the limit.
	var qs []*client.Client
	for range 2 {
		c, err := client.Dial(ctx, p.addr, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		qs = append(qs, c)
		fc, err := client.DialFiles(ctx, p.addr, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer fc.Close()
	}
	// A fifth connection of either kind is refused at once, clearly.
	if _, err := client.Dial(ctx, p.addr, client.Options{}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("queue session over -max-conns: %v", err)
	}
	if _, err := client.DialFiles(ctx, p.addr, client.Options{}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("file session over -max-conns: %v", err)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := plainGET(nc, bufio.NewReader(nc)); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("plain GET over -max-conns: %d %v", code, err)
	}
	_ = nc.Close()

	// A session ends: its slot is free again.
	_ = qs[0].Close()
	var c *client.Client
	waitUntil(t, "a new session after one ended", func() bool {
		c, err = client.Dial(ctx, p.addr, client.Options{})
		return err == nil
	})
	defer c.Close()
	_ = qs[1].Close()

	// A flood of idle connections takes the free slot (and is refused
	// beyond it); an honest client is refused clearly meanwhile and
	// served once the relay has closed the idle ones.
	var flood []net.Conn
	for range 20 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		flood = append(flood, nc)
	}
	keys, _ := client.NewRecipientKeys()
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	// (While all 16 refusals are busy, a refused connection is closed
	// without its 503: also a fast failure.)
	var honest *client.Client
	refusals := 0
	waitUntil(t, "an honest session after the idle flood", func() bool {
		honest, err = client.Dial(ctx, p.addr, client.Options{})
		if err != nil {
			refusals++
		}
		return err == nil
	})
	t.Logf("the honest client was refused %d times during the flood", refusals)
	defer honest.Close()
	q, err := honest.New(ctx, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := honest.Secure(ctx, q.SndID, sk); err != nil {
		t.Fatal(err)
	}
	for _, nc := range flood {
		if err := closedByRelay(nc, nc); err != nil {
			t.Fatalf("flood connection: %v", err)
		}
	}
	p.stop(t)
	if !strings.Contains(p.stderr.String(), "connection limit reached") {
		t.Errorf("no log line about the limit: %s", p.stderr)
	}
	if strings.Contains(p.stderr.String(), "127.0.0.1:") {
		t.Errorf("log mentions an address: %s", p.stderr)
	}
}
