package relay

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
	"github.com/wisp-chat/wisp/server/relay/internal/sessions"
	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/wire"
)

// Store is what the relay needs from durable storage; every
// store.Backend (bbolt's *store.Store, PostgreSQL's *pgstore.Store)
// implements it. A Store that also implements store.Shared is shared by
// several relay processes: the server then follows its events, so that
// a message stored through any process reaches a subscriber on this one,
// and a subscription taken on another process ends this one's (END). Every method is safe for concurrent use, and PutQueued,
// Ack, Create, Secure, Suspend and Delete are durable when they return
// nil. PutQueued calls queued once the message has its place in the
// queue's order (a later PutQueued to the same queue stores after it),
// which may be before it is durable; Create and PutQueued return
// store.ErrFull when the store is full.
type Store interface {
	Create(k store.QueueKey, snd store.SenderKey, q store.Queue) error
	Get(k store.QueueKey) (store.Queue, error)
	BySender(snd store.SenderKey) (store.QueueKey, store.Queue, error)
	Secure(k store.QueueKey, sndAuth [wire.KeySize]byte) error
	Suspend(k store.QueueKey) error
	Delete(k store.QueueKey) error
	PutQueued(k store.QueueKey, m store.Message, quota uint32, queued func()) error
	Peek(k store.QueueKey) (store.Message, bool, error)
	Ack(k store.QueueKey, id wire.MsgID) (store.Message, bool, error)
	Expire(cutoff time.Time, limit int) (int, error)
}

// Config configures a Server.
type Config struct {
	// Identity is the relay's long-term Ed25519 key; its hash is in the
	// relay address.
	Identity ed25519.PrivateKey
	Store    Store
	// Password, if not empty, is required in NEW (sent inside the
	// encrypted session).
	Password []byte
	Limits   Limits
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// Proxy configures private routing through this relay (proxy.go).
	Proxy ProxyConfig
}

// Server serves the relay protocol. It is an http.Handler for the
// WebSocket endpoint.
type Server struct {
	cfg       Config
	log       *slog.Logger
	pwHash    [32]byte
	dummyKey  [wire.KeySize]byte
	nconns    atomic.Int64
	newBudget budget
	// verify checks a transmission's signature; tests count its calls.
	verify func(t *wire.Transmission, sessID [32]byte, key []byte) bool
	// identityPub and keyHash are the relay's public identity.
	identityPub []byte
	keyHash     wire.KeyHash
	proxy       *proxy
	// shared is the store's cross-process side, or nil (one process).
	shared store.Shared

	mu       sync.Mutex
	subs     map[store.QueueKey]*subscription
	sessions sessions.Set[*conn]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// pctx bounds what the relay does as a proxy; Close cancels it
	// first, so that no session's drain waits on a destination.
	pctx    context.Context
	pcancel context.CancelFunc
}

// ErrConfig is returned by New for an unusable configuration.
var ErrConfig = errors.New("relay: bad configuration")

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
	if l := cfg.Limits; l.MaxPendingBytes < msgCost || l.WriteTimeout <= 0 || l.MaxConns < 1 || l.MaxSubsPerConn < 1 ||
		l.NewPerMinute < 1 || l.NewPerMinuteAddr < 0 || l.NewPerMinuteRelay < 0 || l.QueueQuota < 1 ||
		l.Retention <= 0 || l.SweepInterval <= 0 || l.PingInterval <= 0 || l.PingTimeout <= 0 || l.HandshakeTimeout <= 0 {
		return nil, fmt.Errorf("%w: limits out of range (MaxPendingBytes must hold one block payload, %d)", ErrConfig, msgCost)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		subs:   make(map[store.QueueKey]*subscription),
		ctx:    ctx,
		cancel: cancel,
	}
	s.pwHash = sha256.Sum256(cfg.Password)
	// A fixed valid key to verify signatures against when the queue does
	// not exist or is not secured, so that AUTH costs the same either way.
	s.dummyKey = authkey.Dummy("wisp relay: no such queue")
	s.verify = (*wire.Transmission).Verify
	s.pctx, s.pcancel = context.WithCancel(ctx)
	s.identityPub = cfg.Identity.Public().(ed25519.PublicKey)
	s.keyHash = wire.HashIdentity(s.identityPub)
	s.proxy = newProxy(s, cfg.Proxy)
	s.wg.Go(func() { s.proxy.routes.SweepEvery(s.ctx, time.Minute) })
	if sh, ok := cfg.Store.(store.Shared); ok {
		s.shared = sh
		s.wg.Go(func() { _ = sh.Events(s.ctx, s.onEvent) })
	}
	s.newBudget = budget{perAddr: cfg.Limits.NewPerMinuteAddr, perRelay: cfg.Limits.NewPerMinuteRelay}
	s.wg.Go(func() {
		retention.Loop(s.ctx, s.cfg.Limits.SweepInterval, s.log, "retention sweep", s.Sweep)
	})
	return s, nil
}

// Address returns the relay address for the given host and port.
func (s *Server) Address(host string, port uint16) wire.Address {
	return wire.Address{KeyHash: wire.HashIdentity(s.cfg.Identity.Public().(ed25519.PublicKey)), Host: host, Port: port}
}

// ServeHTTP upgrades the request to a WebSocket and serves one session.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.nconns.Add(1) > int64(s.cfg.Limits.MaxConns) {
		s.nconns.Add(-1)
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	defer s.nconns.Add(-1)
	// Browsers connect from pages served by other origins (the static
	// host, e.g. http://127.0.0.1:8080). The relay authenticates nothing
	// by origin or cookie — every queue command is signed inside the
	// encrypted session — so cross-origin WebSockets are accepted.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	ws.SetReadLimit(wire.BlockSize)
	c := newConn(s, ws, sourcePrefix(r.RemoteAddr))
	if !s.sessions.Add(c) {
		_ = ws.Close(websocket.StatusGoingAway, "relay shutting down")
		return
	}
	defer s.sessions.Remove(c)
	s.cfg.Metrics.connDelta(1)
	defer s.cfg.Metrics.connDelta(-1)
	c.serve(s.ctx)
}

// QueueKey returns the recipient key of the queue rcvID, for the file
// endpoint's check that a PRXY comes from a client holding a queue here
// (files.Config.QueueKey). A missing queue is store.ErrNotFound.
func (s *Server) QueueKey(rcvID wire.QueueID) ([wire.KeySize]byte, error) {
	q, err := s.cfg.Store.Get(store.RecipientKey(rcvID))
	return q.RcvAuthKey, err
}

// Connections returns the number of open sessions.
func (s *Server) Connections() int {
	return s.sessions.Len()
}

// Close ends every session: it starts no further command, lets the
// commands in progress finish and writes their answers (each session for
// at most Limits.WriteTimeout), then sends a going-away close. It returns
// once every session has ended and the sweeper has stopped, so the store
// can be closed right after. It does not close the store.
func (s *Server) Close() error {
	conns, first := s.sessions.Close()
	if !first {
		return nil
	}
	// Proxied commands in flight end now (ERR PROXY), and so does every
	// route: a destination that is slow to answer does not hold the
	// shutdown.
	s.pcancel()
	s.proxy.routes.Close()
	var drains sync.WaitGroup
	for _, c := range conns {
		drains.Go(func() {
			c.finish(websocket.StatusGoingAway, "relay shutting down")
			<-c.closed
		})
	}
	drains.Wait()
	// Only now, with every close frame out: the server's context bounds
	// the sessions' reads and writes.
	s.cancel()
	s.wg.Wait()
	s.sessions.Wait()
	return nil
}

// Sweep deletes messages older than the retention period at now.
func (s *Server) Sweep(now time.Time) (int, error) {
	return retention.Sweep(s.ctx, s.cfg.Store.Expire, now.Add(-s.cfg.Limits.Retention), 1000)
}
