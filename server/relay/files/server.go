// Package files is the relay's file chunk store: the wire.FilesPath
// WebSocket endpoint and the durable Backend behind it (SPEC.md, "File
// chunks"): Store (bbolt and a directory, one relay process), or
// pgfiles.Store (PostgreSQL and a shared directory, several relay
// processes behind one address).
//
// The relay binary serves it next to the queue endpoint:
//
//	st, err := files.OpenStore(filepath.Join(dir, "files"), 10<<30)
//	fs, err := files.New(files.Config{Identity: key, Store: st, Limits: files.DefaultLimits()})
//	mux.Handle(wire.FilesPath, fs)
//	...
//	fs.Close() // ends every session, waits for their commands, stops the sweeper
//	st.Close()
//
// A session runs the queue protocol's handshake, then carries one
// transmission per frame; chunk frames come in the fixed sizes of the
// chunk classes. FNEW creates a chunk with a random sender ID and one
// random recipient ID per recipient key, charging its records (not its
// size) against the relay-wide quota; FNEW is rate-limited per session and
// relay-wide, and a session may hold only a few chunks it has not
// uploaded (ERR LIMIT). FPUT stores exactly one chunk of the declared
// class (ERR LARGE otherwise), charging its size (ERR QUOTA), on disk and
// fsynced before OK. FGET returns the chunk re-encrypted for the recipient
// (wire.SealChunk), FACK removes a recipient and the last one deletes the
// chunk, FDEL deletes it for the sender. Chunks expire after
// Limits.Retention, chunks never uploaded after Limits.UnfilledRetention.
//
// AUTH: a missing chunk, a wrong signature and an acknowledged recipient
// all get the same ERR AUTH after the same signature verification work.
// Logs carry counts and error kinds only, never IDs, keys or addresses.
package files

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/relay/internal/authkey"
	"github.com/wisp-chat/wisp/server/relay/internal/retention"
	"github.com/wisp-chat/wisp/server/relay/internal/routes"
	"github.com/wisp-chat/wisp/server/relay/internal/sessions"
	"github.com/wisp-chat/wisp/server/wire"
)

// Limits are the file endpoint's limits; SPEC.md states the defaults.
type Limits struct {
	// Retention is how long a chunk is kept after FNEW.
	Retention time.Duration
	// UnfilledRetention is how long a chunk whose bytes were never
	// uploaded is kept after FNEW.
	UnfilledRetention time.Duration
	// SweepInterval is how often expired chunks are deleted.
	SweepInterval time.Duration
	// MaxConns bounds concurrent file sessions; more get HTTP 503.
	MaxConns int
	// MaxInFlight bounds the commands of one session in progress; the
	// session reads no further frame until one finishes.
	MaxInFlight int
	// MaxChunkOps bounds the chunk frames (FPUT) and downloads (FGET) in
	// progress on the whole relay. A session whose chunk frame finds no
	// slot reads nothing more until one frees, so chunks in memory stay
	// below (MaxChunkOps + MaxConns) × the largest frame.
	MaxChunkOps int
	// MaxChunkOpsPerConn bounds the slots of MaxChunkOps one session
	// holds: a session that does not read its downloads can stall at most
	// this many, and only until WriteTimeout. Besides, downloads together
	// hold at most 3/4 of MaxChunkOps and so do uploads, so that clients
	// stalling one kind never hold the slots of the other.
	MaxChunkOpsPerConn int
	// WriteTimeout bounds the writing of one frame to the client. A
	// session whose frame is not written in time is closed ("client not
	// reading"), which frees the slots its commands hold.
	WriteTimeout time.Duration
	// DrainTimeout bounds how long ending a session (shutdown, a bad
	// frame) waits for its commands in progress to finish and answer
	// before it closes the connection under them.
	DrainTimeout time.Duration
	// FNEWPerConnPerMinute sizes a session's FNEW budget: a bucket of
	// this many tokens, refilled at this many per minute. FNEW takes a
	// token (ERR LIMIT without one); the first FPUT of a chunk created in
	// the session gives it back, so uploading clients never run dry.
	FNEWPerConnPerMinute int
	// FNEWPerMinute is the same budget for the whole relay; an FPUT that
	// gives a session token back also gives one back here.
	FNEWPerMinute int
	// MaxUnfilledPerConn bounds the chunks a session has created and
	// neither uploaded nor deleted; more FNEW is ERR LIMIT.
	MaxUnfilledPerConn int
	// HandshakeTimeout bounds the handshake.
	HandshakeTimeout time.Duration
	// PingInterval is how often the relay sends a WebSocket ping;
	// PingTimeout closes a session whose pong does not arrive in time.
	PingInterval, PingTimeout time.Duration
}

// DefaultLimits returns the limits stated in SPEC.md.
func DefaultLimits() Limits {
	return Limits{
		Retention:            48 * time.Hour,
		UnfilledRetention:    10 * time.Minute,
		SweepInterval:        time.Minute,
		MaxConns:             1000,
		MaxInFlight:          16,
		MaxChunkOps:          64,
		MaxChunkOpsPerConn:   4,
		WriteTimeout:         30 * time.Second,
		DrainTimeout:         5 * time.Second,
		FNEWPerConnPerMinute: 120,
		FNEWPerMinute:        6000,
		MaxUnfilledPerConn:   32,
		HandshakeTimeout:     15 * time.Second,
		PingInterval:         30 * time.Second,
		PingTimeout:          20 * time.Second,
	}
}

// Config configures a Server.
type Config struct {
	// Identity is the relay's long-term Ed25519 key, the same as the
	// queue endpoint's.
	Identity ed25519.PrivateKey
	// Store holds the chunks: a *Store, or a pgfiles.Store shared with
	// other relay processes.
	Store Backend
	// Password, if not empty, is required in FNEW.
	Password []byte
	Limits   Limits
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Proxy configures private routing of downloads (proxy.go).
	Proxy ProxyConfig
	// QueueKey returns the recipient key of a queue on this relay (the
	// queue endpoint's store), for a PRXY that proves the session holds
	// one; nil: only the relay password admits proxy use.
	QueueKey func(rcvID wire.QueueID) ([wire.KeySize]byte, error)
	// now is the clock of the FNEW budgets (time.Now; tests set it).
	now func() time.Time
}

// ErrConfig is returned by New for an unusable configuration.
var ErrConfig = errors.New("files: bad configuration")

// Server serves the file chunk protocol; it is an http.Handler for
// wire.FilesPath.
type Server struct {
	cfg      Config
	log      *slog.Logger
	pwHash   [32]byte
	dummyKey [32]byte
	nconns   atomic.Int64
	chunkOps chan struct{}
	// getOps and putOps are the shares of chunkOps that downloads and
	// uploads may hold.
	getOps, putOps chan struct{}
	fnew           *bucket // the relay-wide FNEW budget
	now            func() time.Time

	sessions sessions.Set[*conn]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// Private routing: pctx bounds the proxy's work and is cancelled
	// first on Close; routes are its sessions to destinations.
	pctx        context.Context
	pcancel     context.CancelFunc
	routes      *routes.Table
	identityPub []byte
}

// New returns a server and starts its retention sweeper.
func New(cfg Config) (*Server, error) {
	if len(cfg.Identity) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: identity key", ErrConfig)
	}
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: no store", ErrConfig)
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	l := cfg.Limits
	if l.Retention <= 0 || l.UnfilledRetention <= 0 || l.SweepInterval <= 0 || l.MaxConns < 1 || l.MaxInFlight < 1 ||
		l.MaxChunkOps < 1 || l.MaxChunkOpsPerConn < 1 || l.WriteTimeout <= 0 || l.DrainTimeout <= 0 || l.FNEWPerConnPerMinute < 1 ||
		l.FNEWPerMinute < 1 || l.MaxUnfilledPerConn < 1 || l.HandshakeTimeout <= 0 || l.PingInterval <= 0 || l.PingTimeout <= 0 {
		return nil, fmt.Errorf("%w: limits must be positive", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: cfg.Logger, chunkOps: make(chan struct{}, l.MaxChunkOps),
		now: cfg.now,
		ctx: ctx, cancel: cancel,
		pwHash:   sha256.Sum256(cfg.Password),
		dummyKey: authkey.Dummy("wisp relay: no such chunk"),
	}
	share := max(1, l.MaxChunkOps-l.MaxChunkOps/4)
	s.getOps, s.putOps = make(chan struct{}, share), make(chan struct{}, share)
	s.fnew = newBucket(l.FNEWPerMinute, s.now())
	s.identityPub = cfg.Identity.Public().(ed25519.PublicKey)
	s.pctx, s.pcancel = context.WithCancel(ctx)
	s.routes = newRoutes(s)
	s.wg.Go(func() {
		retention.Loop(s.ctx, s.cfg.Limits.SweepInterval, s.log, "chunk retention sweep", s.Sweep)
	})
	s.wg.Go(func() { s.routes.SweepEvery(s.ctx, time.Minute) })
	return s, nil
}

// ServeHTTP upgrades the request to a WebSocket and serves one session.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.nconns.Add(1) > int64(s.cfg.Limits.MaxConns) {
		s.nconns.Add(-1)
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	defer s.nconns.Add(-1)
	// Cross-origin WebSockets are accepted for the same reason as on the
	// queue endpoint: every command is signed inside the session.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	lim := s.cfg.Limits
	c := &conn{
		s: s, ws: ws, closing: make(chan struct{}), closed: make(chan struct{}),
		slots:      make(chan struct{}, lim.MaxInFlight),
		chunkSlots: make(chan struct{}, min(lim.MaxChunkOpsPerConn, lim.MaxChunkOps)),
		fnew:       newBucket(lim.FNEWPerConnPerMinute, s.now()),
		unfilled:   make(map[SenderKey]struct{}),
		prxy:       newBucket(s.cfg.Proxy.PrxyPerMinute, s.now()),
		pfwd:       newBucket(s.cfg.Proxy.PfwdPerMinute, s.now()),
	}
	if !s.sessions.Add(c) {
		_ = ws.Close(websocket.StatusGoingAway, "relay shutting down")
		return
	}
	defer s.sessions.Remove(c)
	c.serve(s.ctx)
}

// Connections returns the number of open file sessions.
func (s *Server) Connections() int {
	return s.sessions.Len()
}

// Close ends every session: it starts no further command, lets the
// commands in progress finish and write their answers, then sends a
// going-away close; it returns once every session has ended and the
// sweeper has stopped. It does not close the store, which the caller may
// close once Close returns.
func (s *Server) Close() error {
	conns, first := s.sessions.Close()
	if !first {
		return nil
	}
	// Forwarded downloads in flight end now (ERR PROXY), and so does
	// every route: a slow destination does not hold the shutdown.
	s.pcancel()
	s.routes.Close()
	var drains sync.WaitGroup
	for _, c := range conns {
		drains.Go(func() {
			c.finish(websocket.StatusGoingAway, "relay shutting down")
			<-c.closed
		})
	}
	drains.Wait()
	// Only now: the server's context bounds the sessions' reads and writes.
	s.cancel()
	s.sessions.Wait()
	s.wg.Wait()
	return nil
}

// Sweep deletes the chunks older than the retention period at now and
// those not uploaded within the unfilled retention, in batches walked in
// time order, and returns how many it deleted. A panic of the storage
// layer is returned as an error.
func (s *Server) Sweep(now time.Time) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			n, err = 0, fmt.Errorf("files: chunk sweep panicked (%s)", panicKind(p))
		}
	}()
	l := s.cfg.Limits
	n, err = retention.Sweep(s.ctx, s.cfg.Store.Expire, now.Add(-l.Retention), 256)
	if err != nil {
		return n, err
	}
	m, err := retention.Sweep(s.ctx, s.cfg.Store.ExpireUnfilled, now.Add(-l.UnfilledRetention), 256)
	return n + m, err
}

// bucket is a token bucket: up to size tokens, refilled at size per
// minute.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	size   float64
	last   time.Time
}

func newBucket(perMinute int, now time.Time) *bucket {
	return &bucket{tokens: float64(perMinute), size: float64(perMinute), last: now}
}

// take takes one token at now, if there is one.
func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.size, b.tokens+d.Minutes()*b.size)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// give gives one token back.
func (b *bucket) give() {
	b.mu.Lock()
	b.tokens = min(b.size, b.tokens+1)
	b.mu.Unlock()
}
