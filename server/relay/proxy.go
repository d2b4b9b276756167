package relay

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"time"

	"github.com/wisp-chat/wisp/server/relay/internal/routes"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// The proxy's side of private routing (wire SPEC.md §12). A client of
// this relay asks for a route to a destination relay (PRXY); the relay
// keeps one session per destination for all its clients (package
// routes), asks the destination for its signed forward key, and hands it
// to the client, which checks it against the destination's address. The
// client then forwards commands sealed to that key (PFWD); the relay wraps
// each in its own layer (RFWD) and returns the sealed answer (PRES). It
// sees which destination its client writes to, and when, but never a
// queue ID, a command or its contents.

// ProxyConfig configures the relay's proxy role (routes.ProxyConfig);
// the file endpoint takes the same (files.ProxyConfig).
type ProxyConfig = routes.ProxyConfig

// forwardTimeout bounds one forwarded command, the route's opening
// included.
const forwardTimeout = 30 * time.Second

// proxy is the relay's proxy role: its routes and their configuration.
type proxy struct {
	cfg    ProxyConfig
	routes *routes.Table
}

func newProxy(s *Server, cfg ProxyConfig) *proxy {
	cfg.Defaults()
	opts := cfg.Client
	opts.Dial = routes.Dialer{AllowPrivate: cfg.AllowPrivate, Bind: cfg.Bind}.Dial()
	open := func(ctx context.Context, dest wire.Address, dead func()) (routes.Session, routes.Key, *[32]byte, error) {
		return openQueueRoute(ctx, dest, opts, dead)
	}
	return &proxy{cfg: cfg, routes: routes.New(s.pctx, routes.Config{MaxRoutes: cfg.MaxRoutes, Idle: cfg.IdleRoute, Timeout: forwardTimeout, OnOpen: s.cfg.Metrics.routeOpened}, open)}
}

// queueSession is a route's session to a destination's queue endpoint.
type queueSession struct{ c *client.Client }

func (q queueSession) Relay(ctx context.Context, _ wire.ChunkClass, layered []byte) ([]byte, error) {
	return q.c.Relay(ctx, layered)
}

func (q queueSession) Close() error { return q.c.Close() }

// openQueueRoute dials dest, asks for its forward key and derives the
// layer key. The route ends with the connection: a reconnected session
// has no forward key (the destination would answer ROUTE).
func openQueueRoute(ctx context.Context, dest wire.Address, opts client.Options, dead func()) (routes.Session, routes.Key, *[32]byte, error) {
	c, err := client.Dial(ctx, dest, opts)
	if err != nil {
		return nil, routes.Key{}, nil, err
	}
	go func() {
		for ev := range c.Events() {
			if ev.Kind == client.EventDisconnected {
				dead()
			}
		}
	}()
	key, layer, err := routes.Handshake(ctx, c.ForwardKey)
	if err != nil {
		_ = c.Close()
		return nil, key, nil, err
	}
	return queueSession{c}, key, layer, nil
}

// proxyCommand runs PRXY and PFWD for a client of this relay.
func (c *conn) proxyCommand(t *wire.Transmission) {
	kind := t.Command.Kind
	if t.Signature != nil || len(t.CorrID) == 0 || (kind == wire.CmdPFWD) != (len(t.EntityID) == wire.RouteIDSize) {
		c.fail(t, wire.CodeCmd)
		return
	}
	p := c.s.proxy
	if p.cfg.Off {
		c.fail(t, wire.CodeProhibited)
		return
	}
	if kind == wire.CmdPRXY && len(c.s.cfg.Password) > 0 && !c.proxyOK.Load() {
		pw := sha256.Sum256(t.Command.Password)
		if subtle.ConstantTimeCompare(pw[:], c.s.pwHash[:]) == 1 {
			c.proxyOK.Store(true)
		}
	}
	// Only this relay's own clients: a session that proved it holds a
	// queue here, or gave the relay password.
	if !c.holdsQueue.Load() && !c.proxyOK.Load() {
		c.fail(t, wire.CodeAuth)
		return
	}
	now := time.Now()
	c.mu.Lock()
	var allowed bool
	if kind == wire.CmdPRXY {
		allowed = c.prxyRate.take(now, p.cfg.PrxyPerMinute)
	} else {
		allowed = c.pfwdRate.take(now, p.cfg.PfwdPerMinute)
	}
	c.mu.Unlock()
	if !allowed {
		c.fail(t, wire.CodeLimit)
		return
	}
	ctx, cancel := context.WithTimeout(c.s.pctx, forwardTimeout)
	defer cancel()
	if kind == wire.CmdPRXY {
		if t.Command.Relay.KeyHash == c.s.keyHash {
			c.fail(t, wire.CodeProhibited) // a relay is not its own proxy
			return
		}
		r, err := p.routes.Open(ctx, t.Command.Relay)
		if err != nil {
			c.fail(t, routes.ErrCode(err))
			return
		}
		c.answer(t, wire.Command{Kind: wire.AnsPKEY, Route: r.ID, Identity: r.Key.Identity, DHKey: r.Key.Fwd, KeySig: r.Key.Sig})
		return
	}
	r := p.routes.Lookup(t.EntityID)
	if r == nil {
		c.fail(t, wire.CodeRoute)
		return
	}
	c.s.cfg.Metrics.proxied()
	res, err := p.routes.Forward(ctx, r, wire.ClassControl, t.Command.DHKey, t.Command.Body)
	if err != nil {
		c.fail(t, routes.ErrCode(err))
		return
	}
	c.answer(t, wire.Command{Kind: wire.AnsPRES, Body: res})
}

// bucket is a token bucket of n tokens refilled at n per minute.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time, n int) bool {
	if b.last.IsZero() {
		b.tokens = float64(n)
	} else {
		b.tokens = min(float64(n), b.tokens+now.Sub(b.last).Minutes()*float64(n))
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
