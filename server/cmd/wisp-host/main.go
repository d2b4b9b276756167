// Command wisp-host serves the Wisp web app: the static bundle and
// /config.json with the preset relays. It never sees a message.
//
//	wisp-host [-listen 127.0.0.1:8080] [-relay wisp://…]… [-dev [-web DIR]]
//
// A release build serves the bundle embedded at build time (make build
// writes it into dist/). With -dev it serves the web/ directory from disk,
// re-reading files on every request.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
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

// relayFlags collects repeated -relay flags.
type relayFlags []string

func (r *relayFlags) String() string     { return strings.Join(*r, ",") }
func (r *relayFlags) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wisp-host:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("wisp-host", flag.ContinueOnError)
	listen := fl.String("listen", "127.0.0.1:8080", "address to listen on")
	dev := fl.Bool("dev", false, "serve -web from disk, re-read on every request")
	webDir := fl.String("web", "web", "directory served with -dev")
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
		sub, err := fs.Sub(dist, "dist")
		if err != nil {
			return err
		}
		if _, err := fs.Stat(sub, "index.html"); err != nil {
			return errors.New("this binary has no embedded bundle: build it with `make build`, or use -dev")
		}
		files = sub
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	h, err := host.New(host.Config{
		Files:           files,
		Relays:          relays,
		Dev:             *dev,
		AllowLoopbackWS: *dev || isLoopback(ln.Addr()),
		Logger:          logger,
	})
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("wisp host: http://%s/\n", ln.Addr())

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

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
