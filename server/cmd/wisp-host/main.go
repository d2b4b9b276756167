// Command wisp-host serves the Wisp web app: the static bundle and
// /config.json with the preset relays. It never sees a message.
//
//	wisp-host [-listen 127.0.0.1:8080] [-relay wisp://…]… [-allow-loopback-relays] [-dev [-web DIR]]
//
// A release build serves the bundle embedded at build time (make build
// writes it into dist/). With -dev it serves the web/ directory from disk,
// re-reading files on every request.
//
// The page's Content-Security-Policy lets it reach relays over wss: only.
// -allow-loopback-relays (implied by -dev) also allows plain ws:// to
// 127.0.0.1 and localhost, for a relay on this machine without TLS: make
// run and the browser tests use it. Never set it in production, even when
// the host listens on loopback behind a reverse proxy: it would let a
// malicious invitation make visitors' browsers open WebSockets to their own
// machine. (The core also refuses relays on loopback and private addresses
// unless the page itself was loaded from this machine.)
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wisp-chat/wisp/server/host"
)

//go:embed all:dist
var dist embed.FS

// bundle returns the embedded bundle; tests replace it.
var bundle = func() (fs.FS, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, err
	}
	if _, err := fs.Stat(sub, "index.html"); err != nil {
		return nil, errors.New("this binary has no embedded bundle: build it with `make build`, or use -dev")
	}
	return sub, nil
}

// relayFlags collects repeated -relay flags.
type relayFlags []string

func (r *relayFlags) String() string     { return strings.Join(*r, ",") }
func (r *relayFlags) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wisp-host:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. It prints "wisp host: http://ADDR/" on
// stdout once it listens, and logs to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("wisp-host", flag.ContinueOnError)
	fl.SetOutput(stderr)
	listen := fl.String("listen", "127.0.0.1:8080", "address to listen on")
	dev := fl.Bool("dev", false, "serve -web from disk, re-read on every request (implies -allow-loopback-relays)")
	webDir := fl.String("web", "web", "directory served with -dev")
	loopbackRelays := fl.Bool("allow-loopback-relays", false,
		"let the page reach relays on this machine over plain ws:// (development and tests only)")
	var relays relayFlags
	fl.Var(&relays, "relay", "preset relay address wisp://… (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fl.Args())
	}

	var files fs.FS
	if *dev {
		files = os.DirFS(*webDir)
	} else {
		b, err := bundle()
		if err != nil {
			return err
		}
		files = b
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	h, err := host.New(host.Config{
		Files:  files,
		Relays: relays,
		Dev:    *dev,
		// Not derived from the listening address: a production host
		// behind a reverse proxy listens on loopback too.
		AllowLoopbackWS: *dev || *loopbackRelays,
		Logger:          logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "wisp host: http://%s/\n", ln.Addr())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
