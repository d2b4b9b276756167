// Package files is the relay's file chunk store: the wire.FilesPath
// WebSocket endpoint and the durable Store behind it (SPEC.md, "File
// chunks").
//
// The relay binary serves it next to the queue endpoint:
//
//	st, err := files.OpenStore(filepath.Join(dir, "files"), 10<<30)
//	fs, err := files.New(files.Config{Identity: key, Store: st, Limits: files.DefaultLimits()})
//	mux.Handle(wire.FilesPath, fs)
//	...
//	fs.Close() // ends every session, stops the retention sweeper
//	st.Close()
//
// A session runs the queue protocol's handshake, then carries one
// transmission per frame; chunk frames come in the fixed sizes of the
// chunk classes. FNEW creates a chunk with a random sender ID and one
// random recipient ID per recipient key, reserving its size against the
// relay-wide quota (ERR QUOTA). FPUT stores exactly one chunk of the
// declared class (ERR LARGE otherwise), on disk and fsynced before OK.
// FGET returns the chunk re-encrypted for the recipient (wire.SealChunk),
// FACK removes a recipient and the last one deletes the chunk, FDEL
// deletes it for the sender. Chunks expire after Limits.Retention.
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
	"github.com/wisp-chat/wisp/server/relay/internal/retention"
	"github.com/wisp-chat/wisp/server/relay/internal/sessions"
)

// Limits are the file endpoint's limits; SPEC.md states the defaults.
type Limits struct {
	// Retention is how long a chunk is kept after FNEW.
	Retention time.Duration
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
	// HandshakeTimeout bounds the handshake.
	HandshakeTimeout time.Duration
	// PingInterval is how often the relay sends a WebSocket ping;
	// PingTimeout closes a session whose pong does not arrive in time.
	PingInterval, PingTimeout time.Duration
}

// DefaultLimits returns the limits stated in SPEC.md.
func DefaultLimits() Limits {
	return Limits{
		Retention:        48 * time.Hour,
		SweepInterval:    10 * time.Minute,
		MaxConns:         1000,
		MaxInFlight:      16,
		MaxChunkOps:      64,
		HandshakeTimeout: 15 * time.Second,
		PingInterval:     30 * time.Second,
		PingTimeout:      20 * time.Second,
	}
}

// Config configures a Server.
type Config struct {
	// Identity is the relay's long-term Ed25519 key, the same as the
	// queue endpoint's.
	Identity ed25519.PrivateKey
	Store    *Store
	// Password, if not empty, is required in FNEW.
	Password []byte
	Limits   Limits
	// Logger defaults to slog.Default().
	Logger *slog.Logger
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

	sessions sessions.Set[*conn]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
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
	if l.Retention <= 0 || l.SweepInterval <= 0 || l.MaxConns < 1 || l.MaxInFlight < 1 || l.MaxChunkOps < 1 ||
		l.HandshakeTimeout <= 0 || l.PingInterval <= 0 || l.PingTimeout <= 0 {
		return nil, fmt.Errorf("%w: limits must be positive", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: cfg.Logger, chunkOps: make(chan struct{}, l.MaxChunkOps),
		ctx: ctx, cancel: cancel,
		pwHash:   sha256.Sum256(cfg.Password),
		dummyKey: sha256.Sum256([]byte("wisp relay: no such chunk")),
	}
	s.wg.Go(func() {
		retention.Loop(s.ctx, s.cfg.Limits.SweepInterval, s.log, "chunk retention sweep", s.Sweep)
	})
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
	c := &conn{s: s, ws: ws, closing: make(chan struct{}), slots: make(chan struct{}, s.cfg.Limits.MaxInFlight)}
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

// Close ends every session with a going-away close and stops the sweeper.
// It does not close the store.
func (s *Server) Close() error {
	conns, first := s.sessions.Close()
	if !first {
		return nil
	}
	s.cancel()
	for _, c := range conns {
		c.closeWith(websocket.StatusGoingAway, "relay shutting down")
	}
	s.wg.Wait()
	return nil
}

// Sweep deletes the chunks older than the retention period at now, in
// batches walked in time order, and returns how many it deleted.
func (s *Server) Sweep(now time.Time) (int, error) {
	return retention.Sweep(s.ctx, s.cfg.Store.Expire, now.Add(-s.cfg.Limits.Retention), 256)
}
