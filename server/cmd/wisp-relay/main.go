// Command wisp-relay runs a Wisp relay.
//
//	wisp-relay -listen 127.0.0.1:5223 -data DIR [-password P] [-metrics 127.0.0.1:9223]
//	           [-tls-cert FILE -tls-key FILE | -acme-domain relay.example]
//	           [-files DIR/files] [-files-quota 10737418240] [-files-retention 48h]
//	           [-max-conns N] [-http-timeout 10s] [-check-max-size 1073741824]
//	           [-max-store-bytes 8589934592] [-new-per-minute 120] [-new-per-addr 600] [-new-per-relay 6000]
//	wisp-relay -data DIR [-files DIR/files] -check
//
// The first start creates the queue store DIR/queues.db, the file chunk
// store and then the relay's Ed25519 identity in DIR/identity.key. The
// file chunk store (endpoint /wisp/files) keeps its chunks and their
// records (chunks.db) in the -files folder, refuses uploads beyond
// -files-quota bytes (chunk bytes plus 512 bytes per chunk and 256 per
// recipient record) with QUOTA and deletes chunks -files-retention after
// their creation. The queue store holds at most -max-store-bytes (NEW and
// SEND get FULL beyond); NEW is budgeted per connection
// (-new-per-minute), per source address (-new-per-addr, in memory for
// the current minute only) and on the whole relay (-new-per-relay). Once the listener accepts connections it prints exactly
// one line to stdout:
//
//	relay address: wisp://<keyhash>@host:port
//
// with the port actually bound (so -listen 127.0.0.1:0 works). SIGTERM or
// SIGINT shuts it down gracefully: it stops accepting, ends the sessions,
// lets the commands in progress finish and only then closes the stores.
// Logs go to stderr and never contain queue IDs, keys, message bytes or
// client addresses.
//
// Connections: at most -max-conns TCP connections are open at once,
// whatever they carry (queue or file sessions, plain HTTP requests, or
// nothing yet); one more is answered 503 at once and closed. -max-conns is
// lowered, with a warning, to fit the process's descriptor limit. A
// connection must send its request headers within -http-timeout and is
// closed after -http-timeout idle after a plain HTTP answer (a WebSocket
// session is not affected: it has its own handshake and ping timeouts).
//
// Stores at start: a relay that has an identity had stores, so a missing
// or 0-byte queues.db or chunks.db next to an existing identity.key is
// refused (a lost store would make every queue answer AUTH);
// -allow-empty-store starts with empty stores instead, once a store is
// known to be lost for good. Store files up to -check-max-size bytes are
// checked for consistency at every start (it reads the whole file: about
// 1–3 s per GiB measured on a 2-core machine with the file cached), and
// a corrupt one is refused with a message naming the file; a bigger one
// is only opened, with a warning. -check checks every store file whatever
// its size with the relay stopped, prints one line per file and exits: 0
// if all are consistent, 1 otherwise.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wisp-chat/wisp/server/relay"
	"github.com/wisp-chat/wisp/server/relay/boltcheck"
	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/relay/files/pgfiles"
	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/relay/store/pgstore"
	"github.com/wisp-chat/wisp/server/wire"
	"golang.org/x/crypto/acme/autocert"
)

type config struct {
	listen, data, host      string
	tlsCert, tlsKey, acme   string
	password, metricsAddr   string
	maxConns, newPerMinute  int
	newPerAddr, newPerRelay int
	maxStoreBytes           int64
	filesDir                string
	filesQuota              int64
	filesRetention          time.Duration
	// httpTimeout bounds reading a request's headers (and the request),
	// writing a plain HTTP answer and the idle time after it.
	httpTimeout time.Duration
	// shutdownTimeout bounds the wait for commands in progress at
	// shutdown.
	shutdownTimeout time.Duration
	// checkMaxSize: store files up to this size are checked at start.
	checkMaxSize    int64
	allowEmptyStore bool
	check           bool
	// Private routing (server/wire SPEC.md §12).
	proxyOff     bool
	proxyPrivate bool
	proxyBind    string
	// storeURL, when set, is a PostgreSQL URL: queues, chunk records and
	// the identity live there, shared by every process given the same
	// URL (and the same -files folder).
	storeURL string
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
	flag.IntVar(&cfg.maxConns, "max-conns", relay.DefaultLimits().MaxConns, "maximum open TCP connections (sessions of both endpoints and plain HTTP); lowered to fit the descriptor limit")
	flag.IntVar(&cfg.newPerMinute, "new-per-minute", relay.DefaultLimits().NewPerMinute, "queues one connection may create per minute")
	flag.IntVar(&cfg.newPerAddr, "new-per-addr", relay.DefaultLimits().NewPerMinuteAddr, "queues one source address (IPv4 address, IPv6 /64) may create per minute over all its connections; 0 turns it off (behind a reverse proxy every client has the proxy's address)")
	flag.IntVar(&cfg.newPerRelay, "new-per-relay", relay.DefaultLimits().NewPerMinuteRelay, "queues the whole relay creates per minute at most")
	flag.Int64Var(&cfg.maxStoreBytes, "max-store-bytes", 8<<30, "bytes the queue store holds at most (message bodies plus 121 bytes per message and 246 per queue); beyond, NEW and SEND get FULL")
	flag.StringVar(&cfg.filesDir, "files", "", "file chunk store folder (default DATA/files)")
	flag.Int64Var(&cfg.filesQuota, "files-quota", 10<<30, "bytes of file chunks the relay stores at most")
	flag.DurationVar(&cfg.filesRetention, "files-retention", files.DefaultLimits().Retention, "how long a file chunk is kept")
	flag.DurationVar(&cfg.httpTimeout, "http-timeout", 10*time.Second, "time a connection has to send its request headers, and stays open idle after a plain HTTP answer (WebSocket sessions are not affected)")
	flag.Int64Var(&cfg.checkMaxSize, "check-max-size", 1<<30, "check store files up to this many bytes for consistency at start (0: none); bigger ones need -check")
	flag.BoolVar(&cfg.allowEmptyStore, "allow-empty-store", false, "start with an empty store although queues.db or chunks.db is missing or empty next to an existing identity.key (after a store was lost for good: its queues and chunks then answer AUTH)")
	flag.BoolVar(&cfg.check, "check", false, "check every store file for consistency, whatever its size, print a report and exit (1 if one is corrupt); the relay must be stopped")
	flag.BoolVar(&cfg.proxyOff, "proxy-off", false, "do not forward commands for this relay's clients to other relays (private routing)")
	flag.BoolVar(&cfg.proxyPrivate, "proxy-private", false, "let private routing reach relays on loopback and private addresses (development, tests, relays on one private network); off, only public addresses are contacted")
	flag.StringVar(&cfg.proxyBind, "proxy-bind", "", "local IP address for connections to other relays (private routing)")
	flag.StringVar(&cfg.storeURL, "store", "", "PostgreSQL URL (postgres://user@host/db) holding queues, chunk records and the relay identity, shared by every relay process given the same URL and -files folder (default: bbolt files in -data)")
	flag.Parse()
	cfg.shutdownTimeout = 10 * time.Second
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if cfg.check && cfg.storeURL != "" {
		log.Error("-check checks the bbolt store files; a PostgreSQL store is checked with PostgreSQL's own tools")
		os.Exit(2)
	}
	if cfg.check {
		if err := checkStores(cfg, os.Stdout); err != nil {
			log.Error("store check failed", "err", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("relay failed", "err", err)
		os.Exit(1)
	}
}

// readIdentity reads DIR/identity.key; exists is false when there is none
// yet.
func readIdentity(dir string) (key ed25519.PrivateKey, exists bool, err error) {
	path := filepath.Join(dir, "identity.key")
	seed, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading identity: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, true, fmt.Errorf("identity key %s is %d bytes, want %d", path, len(seed), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), true, nil
}

// createIdentity writes a new DIR/identity.key.
func createIdentity(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, "identity.key")
	seed := make([]byte, ed25519.SeedSize)
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

// storeFiles returns the relay's bbolt files.
func storeFiles(cfg config) []string {
	dir := cfg.filesDir
	if dir == "" {
		dir = filepath.Join(cfg.data, "files")
	}
	return []string{filepath.Join(cfg.data, "queues.db"), filepath.Join(dir, "chunks.db")}
}

// verifyStores runs before the stores are opened. With an identity, every
// store file must exist and not be empty (unless -allow-empty-store, which
// removes an empty one so that it is created anew). Files up to
// -check-max-size bytes are checked for consistency.
func verifyStores(cfg config, hadIdentity bool, log *slog.Logger) error {
	for _, path := range storeFiles(cfg) {
		fi, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist) || err == nil && fi.Size() == 0:
			if !hadIdentity {
				continue // a new relay
			}
			what := "is missing"
			if err == nil {
				what = "has 0 bytes"
			}
			if !cfg.allowEmptyStore {
				return fmt.Errorf("store file %s %s but identity.key exists, so this relay had a store: restore the file (or, if it is lost for good, start once with -allow-empty-store: every queue or chunk it held then answers AUTH)", path, what)
			}
			log.Warn("starting with an empty store (-allow-empty-store)", "file", path, "was", what)
			if err == nil {
				if err := os.Remove(path); err != nil {
					return err
				}
			}
			continue
		case err != nil:
			return err
		}
		if fi.Size() > cfg.checkMaxSize {
			log.Warn("store file not checked at start: larger than -check-max-size; check it with -check while the relay is stopped", "file", path, "bytes", fi.Size())
			continue
		}
		res, err := boltcheck.Check(path)
		if err != nil {
			return fmt.Errorf("refusing to start: %w (run wisp-relay -check for a report; restore the file from a backup)", err)
		}
		log.Info("store file checked", "file", path, "bytes", res.Size, "took", res.Elapsed.Round(time.Millisecond))
	}
	return nil
}

// checkStores is -check: it checks every store file and writes one line
// per file to out.
func checkStores(cfg config, out io.Writer) error {
	if cfg.data == "" {
		return errors.New("-data is required")
	}
	_, hadIdentity, err := readIdentity(cfg.data)
	if err != nil {
		return err
	}
	bad := 0
	for _, path := range storeFiles(cfg) {
		res, err := boltcheck.Check(path)
		switch {
		case err == nil:
			fmt.Fprintf(out, "%s: ok (%d bytes, %d pages, %d keys, checked in %s)\n", path, res.Size, res.Pages, res.Keys, res.Elapsed.Round(time.Millisecond))
			continue
		case errors.Is(err, fs.ErrNotExist) && !hadIdentity:
			fmt.Fprintf(out, "%s: missing (no identity.key either: a new relay)\n", path)
			continue
		}
		bad++
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(out, "%s: LOST: missing although identity.key exists\n", path)
			continue
		case errors.Is(err, boltcheck.ErrEmpty):
			fmt.Fprintf(out, "%s: LOST: 0 bytes\n", path)
			continue
		}
		var ce *boltcheck.CorruptError
		if errors.As(err, &ce) {
			fmt.Fprintf(out, "%s: CORRUPT, %d problem(s):\n", path, ce.Total)
			for _, p := range ce.Problems {
				fmt.Fprintf(out, "  %s\n", p)
			}
			if ce.Total > len(ce.Problems) {
				fmt.Fprintf(out, "  ...\n")
			}
			continue
		}
		fmt.Fprintf(out, "%s: FAILED: %v\n", path, err)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d store files failed the check", bad, len(storeFiles(cfg)))
	}
	return nil
}

// handlers counts the requests in progress, WebSocket sessions included,
// so that shutdown can wait for their commands before closing the stores.
type handlers struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (h *handlers) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			http.Error(w, "relay shutting down", http.StatusServiceUnavailable)
			return
		}
		h.wg.Add(1)
		h.mu.Unlock()
		defer h.wg.Done()
		next.ServeHTTP(w, r)
	})
}

// close refuses new requests and waits for those in progress until ctx
// ends; it reports whether they all finished.
func (h *handlers) close(ctx context.Context) bool {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// descriptorReserve is kept out of -max-conns for the stores, chunk files
// being read or written, the listeners and refused connections.
const descriptorReserve = 128

// fitMaxConns lowers maxConns to what the descriptor limit allows.
func fitMaxConns(maxConns int, log *slog.Logger) int {
	limit, ok := descriptorLimit()
	if !ok || uint64(maxConns)+descriptorReserve <= limit {
		return maxConns
	}
	n := 1
	if limit > 2*descriptorReserve {
		n = int(limit - descriptorReserve)
	} else if limit > 2 {
		n = int(limit / 2)
	}
	log.Warn("-max-conns lowered to fit the descriptor limit (raise it with ulimit -n or LimitNOFILE=)", "max_conns", n, "descriptor_limit", limit)
	return n
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
	if cfg.filesQuota <= 0 || cfg.filesRetention <= 0 {
		return errors.New("-files-quota and -files-retention must be positive")
	}
	if cfg.maxStoreBytes <= 0 || cfg.newPerMinute < 1 || cfg.newPerAddr < 0 || cfg.newPerRelay < 0 {
		return errors.New("-max-store-bytes and -new-per-minute must be positive, -new-per-addr and -new-per-relay not negative")
	}
	if cfg.maxConns < 1 || cfg.httpTimeout <= 0 {
		return errors.New("-max-conns and -http-timeout must be positive")
	}
	if cfg.shutdownTimeout <= 0 {
		cfg.shutdownTimeout = 10 * time.Second
	}
	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return err
	}
	id, st, fst, closeStores, err := openStores(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeStores()

	maxConns := fitMaxConns(cfg.maxConns, log)
	limits := relay.DefaultLimits()
	limits.MaxConns = maxConns
	limits.NewPerMinute = cfg.newPerMinute
	limits.NewPerMinuteAddr = cfg.newPerAddr
	limits.NewPerMinuteRelay = cfg.newPerRelay
	proxy, err := proxyConfig(cfg)
	if err != nil {
		return err
	}
	rc := relay.Config{Identity: id, Store: st, Password: []byte(cfg.password), Limits: limits, Logger: log, Proxy: proxy}
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
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		go func() { _ = metricsSrv.Serve(mln) }()
		// Closed before the store (deferred after it): a scrape reads it.
		defer metricsSrv.Close()
	}
	srv, err := relay.New(rc)
	if err != nil {
		return err
	}
	defer srv.Close()
	fsrv, err := newFilesServer(cfg, id, fst, srv.QueueKey, log)
	if err != nil {
		return err
	}
	defer fsrv.Close()
	var active handlers
	mux := http.NewServeMux()
	mux.Handle(wire.EndpointPath, active.wrap(srv))
	mux.Handle(wire.FilesPath, active.wrap(fsrv))
	// A WebSocket upgrade hijacks the connection, and net/http clears the
	// connection's deadlines when it does: these timeouts bind plain HTTP
	// requests (a 426 to a GET without upgrade, a 404) and connections
	// that never send a request, never a session.
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: cfg.httpTimeout,
		ReadTimeout:       cfg.httpTimeout,
		WriteTimeout:      cfg.httpTimeout,
		IdleTimeout:       cfg.httpTimeout,
		ErrorLog:          slog.NewLogLogger(discard{}, slog.LevelError),
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	switch {
	case cfg.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("loading TLS key pair: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case cfg.acme != "":
		m := &autocert.Manager{Prompt: autocert.AcceptTOS, HostPolicy: autocert.HostWhitelist(cfg.acme), Cache: autocert.DirCache(filepath.Join(cfg.data, "acme"))}
		tlsCfg = m.TLSConfig()
	}
	// Every TCP connection counts against -max-conns, under TLS.
	ln = relay.LimitListener(ln, relay.ListenerConfig{MaxConns: maxConns, TLS: tlsCfg, Logger: log})
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	host, port, err := addressHost(cfg, ln.Addr())
	if err != nil {
		_ = ln.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	// The listener is open (its backlog accepts) and Serve is running.
	fmt.Printf("relay address: %s\n", srv.Address(host, port))
	log.Info("relay started")
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("relay shutting down")
	case serveErr = <-errc:
	}
	// Drain: stop accepting and finish plain HTTP requests, end the
	// sessions, wait for the commands in progress, and only then (the
	// deferred closes) close the stores.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	_ = hs.Shutdown(sctx)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = srv.Close()
		_ = fsrv.Close()
	}()
	drained := active.close(sctx)
	select {
	case <-closed:
	case <-sctx.Done():
		drained = false
	}
	if !drained {
		log.Warn("shutdown: sessions still running commands after the shutdown timeout; closing the stores anyway")
	}
	if metricsSrv != nil {
		_ = metricsSrv.Shutdown(sctx)
	}
	return serveErr
}

// openStores returns the relay identity and its two stores: bbolt
// files in -data, or PostgreSQL (-store) with the chunk bytes in -files.
// closeStores closes both.
func openStores(ctx context.Context, cfg config, log *slog.Logger) (id ed25519.PrivateKey, st store.Backend, fst files.Backend, closeStores func(), err error) {
	if cfg.storeURL != "" {
		return openShared(ctx, cfg)
	}
	id, hadIdentity, err := readIdentity(cfg.data)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if err := verifyStores(cfg, hadIdentity, log); err != nil {
		return nil, nil, nil, nil, err
	}
	bst, err := store.OpenWith(filepath.Join(cfg.data, "queues.db"), store.Options{MaxBytes: cfg.maxStoreBytes})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	bfst, err := files.OpenStore(filesDir(cfg), cfg.filesQuota)
	if err != nil {
		_ = bst.Close()
		return nil, nil, nil, nil, err
	}
	closeStores = func() { _ = bfst.Close(); _ = bst.Close() }
	// The identity comes last on a first start: a relay with an identity
	// always has its stores.
	if !hadIdentity {
		if id, err = createIdentity(cfg.data); err != nil {
			closeStores()
			return nil, nil, nil, nil, err
		}
	}
	return id, bst, bfst, closeStores, nil
}

// openShared opens the PostgreSQL stores. The identity is the one in
// the database; the first process to start stores DATA/identity.key
// there when it has one (a relay moving to PostgreSQL keeps its
// address), else a new key.
func openShared(ctx context.Context, cfg config) (ed25519.PrivateKey, store.Backend, files.Backend, func(), error) {
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pst, err := pgstore.Open(octx, cfg.storeURL, store.Options{MaxBytes: cfg.maxStoreBytes})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	id, err := pst.Identity(func() (ed25519.PrivateKey, error) {
		key, exists, err := readIdentity(cfg.data)
		if err != nil || exists {
			return key, err
		}
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		return ed25519.NewKeyFromSeed(seed), nil
	})
	if err != nil {
		_ = pst.Close()
		return nil, nil, nil, nil, err
	}
	pfst, err := pgfiles.Open(octx, cfg.storeURL, filesDir(cfg), cfg.filesQuota)
	if err != nil {
		_ = pst.Close()
		return nil, nil, nil, nil, err
	}
	return id, pst, pfst, func() { _ = pfst.Close(); _ = pst.Close() }, nil
}

// filesDir is the chunk folder: -files, or DATA/files.
func filesDir(cfg config) string {
	if cfg.filesDir == "" {
		return filepath.Join(cfg.data, "files")
	}
	return cfg.filesDir
}

// newFilesServer returns the file chunk endpoint.
func newFilesServer(cfg config, id ed25519.PrivateKey, st files.Backend, queueKey func(wire.QueueID) ([wire.KeySize]byte, error), log *slog.Logger) (*files.Server, error) {
	limits := files.DefaultLimits()
	limits.Retention = cfg.filesRetention
	limits.SweepInterval = min(limits.SweepInterval, cfg.filesRetention)
	p, err := proxyConfig(cfg)
	if err != nil {
		return nil, err
	}
	return files.New(files.Config{Identity: id, Store: st, Password: []byte(cfg.password), Limits: limits, Logger: log,
		QueueKey: queueKey, Proxy: p})
}

// proxyConfig is the private-routing configuration from the flags.
func proxyConfig(cfg config) (relay.ProxyConfig, error) {
	p := relay.ProxyConfig{Off: cfg.proxyOff, AllowPrivate: cfg.proxyPrivate}
	if cfg.proxyBind != "" {
		a, err := netip.ParseAddr(cfg.proxyBind)
		if err != nil {
			return p, fmt.Errorf("-proxy-bind: %w", err)
		}
		p.Bind = a
	}
	return p, nil
}

// discard drops net/http's own error log, which would contain client
// addresses.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }
