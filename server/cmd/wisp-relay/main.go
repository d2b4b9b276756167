// Command wisp-relay runs a Wisp relay.
//
//	wisp-relay -listen 127.0.0.1:5223 -data DIR [-password P] [-metrics 127.0.0.1:9223]
//	           [-tls-cert FILE -tls-key FILE | -acme-domain relay.example]
//	           [-files DIR/files] [-files-quota 10737418240] [-files-retention 48h]
//
// The first start creates the relay's Ed25519 identity in DIR/identity.key
// and the queue store DIR/queues.db. The file chunk store (endpoint
// /wisp/files) keeps its chunks and their records in the -files folder,
// refuses new chunks beyond -files-quota bytes with QUOTA and deletes
// chunks -files-retention after their creation. Once the listener accepts connections
// it prints exactly one line to stdout:
//
//	relay address: wisp://<keyhash>@host:port
//
// with the port actually bound (so -listen 127.0.0.1:0 works). SIGTERM or
// SIGINT shuts it down gracefully. Logs go to stderr and never contain
// queue IDs, keys, message bytes or client addresses.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wisp-chat/wisp/server/relay"
	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/wire"
	"golang.org/x/crypto/acme/autocert"
)

type config struct {
	listen, data, host     string
	tlsCert, tlsKey, acme  string
	password, metricsAddr  string
	maxConns, newPerMinute int
	filesDir               string
	filesQuota             int64
	filesRetention         time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.listen, "listen", "127.0.0.1:5223", "address to listen on (port 0 picks a free port)")
	flag.StringVar(&cfg.data, "data", "", "data directory (identity key and queue store)")
	flag.StringVar(&cfg.host, "host", "", "host name to put in the relay address (default: the listen host, or the ACME domain)")
	flag.StringVar(&cfg.tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	flag.StringVar(&cfg.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	flag.StringVar(&cfg.acme, "acme-domain", "", "obtain a certificate for this domain with ACME (TLS-ALPN-01 on the listen port)")
	flag.StringVar(&cfg.password, "password", "", "require this password to create queues")
	flag.StringVar(&cfg.metricsAddr, "metrics", "", "serve Prometheus /metrics on this address (off by default)")
	flag.IntVar(&cfg.maxConns, "max-conns", relay.DefaultLimits().MaxConns, "maximum concurrent connections")
	flag.IntVar(&cfg.newPerMinute, "new-per-minute", relay.DefaultLimits().NewPerMinute, "queues one connection may create per minute")
	flag.StringVar(&cfg.filesDir, "files", "", "file chunk store folder (default DATA/files)")
	flag.Int64Var(&cfg.filesQuota, "files-quota", 10<<30, "bytes of file chunks the relay stores at most")
	flag.DurationVar(&cfg.filesRetention, "files-retention", files.DefaultLimits().Retention, "how long a file chunk is kept")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("relay failed", "err", err)
		os.Exit(1)
	}
}

// loadIdentity reads DIR/identity.key or creates it on first start.
func loadIdentity(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, "identity.key")
	seed, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		seed = make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, seed, 0o600); err != nil {
			return nil, fmt.Errorf("writing identity: %w", err)
		}
		if err := syncFile(tmp); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, fmt.Errorf("writing identity: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("reading identity: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity key %s is %d bytes, want %d", path, len(seed), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func addressHost(cfg config, ln net.Addr) (string, uint16, error) {
	h, p, err := net.SplitHostPort(ln.String())
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, err
	}
	switch {
	case cfg.host != "":
		h = cfg.host
	case cfg.acme != "":
		h = cfg.acme
	default:
		if ip, err := netip.ParseAddr(h); err == nil && ip.IsUnspecified() {
			h = "127.0.0.1"
		}
	}
	return h, uint16(port), nil
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	if cfg.data == "" {
		return errors.New("-data is required")
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	if cfg.tlsCert != "" && cfg.acme != "" {
		return errors.New("use either -tls-cert/-tls-key or -acme-domain")
	}
	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return err
	}
	id, err := loadIdentity(cfg.data)
	if err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(cfg.data, "queues.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	limits := relay.DefaultLimits()
	limits.MaxConns = cfg.maxConns
	limits.NewPerMinute = cfg.newPerMinute
	rc := relay.Config{Identity: id, Store: st, Password: []byte(cfg.password), Limits: limits, Logger: log}
	var metricsSrv *http.Server
	if cfg.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		if rc.Metrics, err = relay.NewMetrics(reg, st.Counts); err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mln, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = metricsSrv.Serve(mln) }()
		defer metricsSrv.Close()
	}
	srv, err := relay.New(rc)
	if err != nil {
		return err
	}
	fsrv, fst, err := openFiles(cfg, id, log)
	if err != nil {
		return err
	}
	defer fst.Close()
	defer fsrv.Close()
	mux := http.NewServeMux()
	mux.Handle(wire.EndpointPath, srv)
	mux.Handle(wire.FilesPath, fsrv)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(discard{}, slog.LevelError)}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	switch {
	case cfg.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return fmt.Errorf("loading TLS key pair: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	case cfg.acme != "":
		m := &autocert.Manager{Prompt: autocert.AcceptTOS, HostPolicy: autocert.HostWhitelist(cfg.acme), Cache: autocert.DirCache(filepath.Join(cfg.data, "acme"))}
		ln = tls.NewListener(ln, m.TLSConfig())
	}
	host, port, err := addressHost(cfg, ln.Addr())
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	// The listener is open (its backlog accepts) and Serve is running.
	fmt.Printf("relay address: %s\n", srv.Address(host, port))
	log.Info("relay started")
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	log.Info("relay shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return srv.Close()
}

// openFiles opens the file chunk store and its endpoint.
func openFiles(cfg config, id ed25519.PrivateKey, log *slog.Logger) (*files.Server, *files.Store, error) {
	if cfg.filesQuota <= 0 || cfg.filesRetention <= 0 {
		return nil, nil, errors.New("-files-quota and -files-retention must be positive")
	}
	dir := cfg.filesDir
	if dir == "" {
		dir = filepath.Join(cfg.data, "files")
	}
	st, err := files.OpenStore(dir, cfg.filesQuota)
	if err != nil {
		return nil, nil, err
	}
	limits := files.DefaultLimits()
	limits.Retention = cfg.filesRetention
	limits.SweepInterval = min(limits.SweepInterval, cfg.filesRetention)
	srv, err := files.New(files.Config{Identity: id, Store: st, Password: []byte(cfg.password), Limits: limits, Logger: log})
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return srv, st, nil
}

// discard drops net/http's own error log, which would contain client
// addresses.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }
