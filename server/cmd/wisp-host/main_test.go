package main

import (
	"bufio"
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// startRun runs the command with args on a free loopback port, serving a
// tiny bundle, and returns its base URL. The server stops at cleanup.
func startRun(t *testing.T, args ...string) string {
	t.Helper()
	saved := bundle
	bundle = func() (fs.FS, error) {
		return fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>Wisp</title>")}}, nil
	}
	t.Cleanup(func() { bundle = saved })

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"-listen", "127.0.0.1:0"}, args...), pw, io.Discard)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	ready := regexp.MustCompile(`^wisp host: (http://\S+)/$`)
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if m := ready.FindStringSubmatch(sc.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			return m[1]
		}
	}
	t.Fatalf("wisp-host did not start: %v", <-done)
	return ""
}

func csp(t *testing.T, base string) string {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	return resp.Header.Get("Content-Security-Policy")
}

// TestLoopbackHostServesNoWSLoopback: a production host listening on
// loopback (as it does behind a reverse proxy) lets the page reach relays
// over wss: only. Before, listening on loopback was enough to allow
// ws://127.0.0.1:* and ws://localhost:*.
func TestLoopbackHostServesNoWSLoopback(t *testing.T) {
	got := csp(t, startRun(t))
	if !strings.Contains(got, "connect-src 'self' wss:;") {
		t.Errorf("CSP %q lacks \"connect-src 'self' wss:;\"", got)
	}
	if strings.Contains(got, "ws:") || strings.Contains(got, "ws://") || strings.Contains(got, "localhost") || strings.Contains(got, "127.0.0.1") {
		t.Errorf("a non-dev host allows plain WebSockets to this machine: %q", got)
	}
}

// TestLoopbackRelaysFlag: -allow-loopback-relays and -dev allow plain ws://
// to this machine, for make run and the browser tests.
func TestLoopbackRelaysFlag(t *testing.T) {
	web := t.TempDir()
	if err := os.WriteFile(filepath.Join(web, "index.html"), []byte("<!doctype html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-allow-loopback-relays"}, {"-dev", "-web", web}} {
		got := csp(t, startRun(t, args...))
		if !strings.Contains(got, "connect-src 'self' wss: ws://127.0.0.1:* ws://localhost:*;") {
			t.Errorf("%v: CSP %q does not allow loopback relays", args, got)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"extra"}, {"-nope"}, {"-relay", "https://relay.example"}} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
