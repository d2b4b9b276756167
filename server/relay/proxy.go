package relay

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// The proxy's side of private routing (wire SPEC.md §12). A client of
// this relay asks for a route to a destination relay (PRXY); the relay
// keeps one session per destination for all its clients, asks the
// destination for its signed forward key, and hands it to the client,
// which checks it against the destination's address. The client then
// forwards commands sealed to that key (PFWD); the relay wraps each in its
// own layer (RFWD) and returns the sealed answer (PRES). It sees which
// destination its client writes to, and when, but never a queue ID, a
// command or its contents.

// ProxyConfig configures the relay's proxy role.
type ProxyConfig struct {
	// Off refuses PRXY and PFWD (ERR PROHIBITED).
	Off bool
	// AllowPrivate lets the proxy connect to destinations on loopback,
	// private and link-local addresses: for tests and a relay whose
	// destinations are on its own network. Off, a destination whose
	// address is not public is ERR PROXY (no request to the relay's own
	// network on a client's behalf).
	AllowPrivate bool
	// Bind, if valid, is the local address of the proxy's outgoing
	// connections.
	Bind netip.Addr
	// MaxRoutes bounds the destinations with an open session (ERR LIMIT
	// past it) [1,000].
	MaxRoutes int
	// IdleRoute closes a destination's session unused this long [10m].
	IdleRoute time.Duration
	// PrxyPerMinute and PfwdPerMinute are each session's budgets (token
	// buckets of that size, refilled at that rate) [60, 3,000].
	PrxyPerMinute, PfwdPerMinute int
	// Client tunes the sessions to destinations (tests shorten timeouts).
	Client client.Options
}

func (p *ProxyConfig) defaults() {
	if p.MaxRoutes <= 0 {
		p.MaxRoutes = 1000
	}
	if p.IdleRoute <= 0 {
		p.IdleRoute = 10 * time.Minute
	}
	if p.PrxyPerMinute <= 0 {
		p.PrxyPerMinute = 60
	}
	if p.PfwdPerMinute <= 0 {
		p.PfwdPerMinute = 3000
	}
}

// errNotPublic refuses a proxy connection to a non-public address.
var errNotPublic = errors.New("relay: destination address is not public")

// forwardTimeout bounds one forwarded command, the route's opening
// included.
const forwardTimeout = 30 * time.Second

// route is the proxy's session to one destination.
type route struct {
	id    [wire.RouteIDSize]byte
	dest  wire.Address
	ready chan struct{} // closed when the fields below are set
	err   error         // the opening failed
	c     *client.Client
	ans   wire.Command // PKEY for clients
	layer *[32]byte
	last  atomic.Int64 // Unix nanoseconds of the last use
	dead  atomic.Bool
}

// proxy holds the routes of a relay.
type proxy struct {
	s   *Server
	cfg ProxyConfig
	tr  *http.Transport

	mu     sync.Mutex
	byDest map[wire.Address]*route
	byID   map[[wire.RouteIDSize]byte]*route
	closed bool
	wg     sync.WaitGroup

	// Opened and forwarded count routes opened and commands forwarded
	// (session reuse = 1 − opened/forwarded).
	opened, forwarded atomic.Int64
}

func newProxy(s *Server, cfg ProxyConfig) *proxy {
	cfg.defaults()
	p := &proxy{s: s, cfg: cfg, byDest: make(map[wire.Address]*route), byID: make(map[[wire.RouteIDSize]byte]*route)}
	d := &net.Dialer{Timeout: 15 * time.Second, Control: p.control}
	if cfg.Bind.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: cfg.Bind.AsSlice()}
	}
	p.tr = &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: 15 * time.Second, ForceAttemptHTTP2: false}
	return p
}

// control screens the address the proxy is about to connect to, after
// name resolution, so a name that resolves to the relay's own network is
// refused too.
func (p *proxy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	if !p.cfg.AllowPrivate && !isPublic(ap.Addr().Unmap()) {
		return errNotPublic
	}
	return nil
}

var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

func isPublic(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !sharedAddressSpace.Contains(ip)
}

func (p *proxy) dial(ctx context.Context, url string) (*websocket.Conn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: p.tr},
		CompressionMode: websocket.CompressionDisabled,
	})
	return ws, err
}

// open returns the route to dest, opening it if there is none.
func (p *proxy) open(ctx context.Context, dest wire.Address) (*route, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, client.ErrClosed
	}
	r := p.byDest[dest]
	if r == nil || r.dead.Load() {
		if len(p.byID) >= p.cfg.MaxRoutes {
			p.mu.Unlock()
			return nil, wire.CodeLimit
		}
		r = &route{dest: dest, ready: make(chan struct{})}
		_, _ = rand.Read(r.id[:])
		p.byDest[dest] = r
		p.byID[r.id] = r
		p.wg.Add(1)
		go p.connect(r)
	}
	p.mu.Unlock()
	select {
	case <-r.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, r.err
	}
	r.last.Store(time.Now().UnixNano())
	return r, nil
}

// connect opens a route's session and asks for the forward key.
func (p *proxy) connect(r *route) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.s.ctx, forwardTimeout)
	defer cancel()
	opts := p.cfg.Client
	opts.Dial = p.dial
	c, err := client.Dial(ctx, r.dest, opts)
	if err == nil {
		var eph *ecdh.PrivateKey
		eph, err = ecdh.X25519().GenerateKey(rand.Reader)
		if err == nil {
			r.ans.Identity, r.ans.DHKey, r.ans.KeySig, err = c.ForwardKey(ctx, eph)
		}
		if err == nil {
			var ephPub [wire.KeySize]byte
			copy(ephPub[:], eph.PublicKey().Bytes())
			r.layer, err = wire.LayerKey(eph, r.ans.DHKey, ephPub, r.ans.DHKey)
		}
		if err != nil {
			c.Close()
		}
	}
	if err != nil {
		r.err = fmt.Errorf("%w: %w", wire.CodeProxy, err)
		p.kill(r)
		close(r.ready)
		return
	}
	r.c = c
	r.ans.Kind, r.ans.Route = wire.AnsPKEY, r.id
	p.opened.Add(1)
	p.s.cfg.Metrics.routeOpened()
	close(r.ready)
	// The route ends with its session: a reconnected session has no
	// forward key (the destination would answer ROUTE).
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for ev := range c.Events() {
			if ev.Kind == client.EventDisconnected {
				p.kill(r)
			}
		}
	}()
}

// kill removes a route; its session is closed.
func (p *proxy) kill(r *route) {
	if r.dead.Swap(true) {
		return
	}
	p.mu.Lock()
	if p.byDest[r.dest] == r {
		delete(p.byDest, r.dest)
	}
	delete(p.byID, r.id)
	p.mu.Unlock()
	if r.c != nil {
		go r.c.Close()
	}
}

func (p *proxy) lookup(id []byte) *route {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.byID[[wire.RouteIDSize]byte(id)]
	if r == nil || r.dead.Load() {
		return nil
	}
	select {
	case <-r.ready:
		if r.err != nil {
			return nil
		}
		return r
	default:
		return nil
	}
}

// sweep closes routes unused for IdleRoute.
func (p *proxy) sweep(now time.Time) {
	p.mu.Lock()
	var idle []*route
	for _, r := range p.byID {
		select {
		case <-r.ready:
			if now.Sub(time.Unix(0, r.last.Load())) >= p.cfg.IdleRoute {
				idle = append(idle, r)
			}
		default:
		}
	}
	p.mu.Unlock()
	for _, r := range idle {
		p.kill(r)
	}
}

// close ends every route and waits for their goroutines.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	rs := make([]*route, 0, len(p.byID))
	for _, r := range p.byID {
		rs = append(rs, r)
	}
	p.mu.Unlock()
	for _, r := range rs {
		select {
		case <-r.ready:
			p.kill(r)
		default: // connect ends with the server's context and kills it
		}
	}
	p.wg.Wait()
}

// forward sends one PFWD's arguments to the destination and returns
// PRES's argument.
func (p *proxy) forward(ctx context.Context, r *route, cmd *wire.Command) ([]byte, error) {
	inner := make([]byte, 0, wire.KeySize+len(cmd.Body))
	inner = append(append(inner, cmd.DHKey[:]...), cmd.Body...)
	layered, err := wire.SealLayer(rand.Reader, r.layer, inner)
	if err != nil {
		return nil, err
	}
	r.last.Store(time.Now().UnixNano())
	p.forwarded.Add(1)
	p.s.cfg.Metrics.proxied()
	res, err := r.c.Relay(ctx, layered)
	var code wire.ErrCode
	switch {
	case errors.As(err, &code):
		if code == wire.CodeRoute {
			p.kill(r)
		}
		return nil, code
	case err != nil:
		if !errors.Is(err, context.DeadlineExceeded) {
			p.kill(r)
		}
		return nil, fmt.Errorf("%w: %w", wire.CodeProxy, err)
	}
	out, err := wire.OpenLayer(r.layer, res)
	if err != nil {
		p.kill(r)
		return nil, fmt.Errorf("%w: %w", wire.CodeProxy, err)
	}
	return out, nil
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
	allowed := false
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
	ctx, cancel := context.WithTimeout(c.ctx, forwardTimeout)
	defer cancel()
	if kind == wire.CmdPRXY {
		if t.Command.Relay.KeyHash == c.s.keyHash {
			c.fail(t, wire.CodeProhibited) // a relay is not its own proxy
			return
		}
		r, err := p.open(ctx, t.Command.Relay)
		if err != nil {
			c.fail(t, errCode(err))
			return
		}
		c.answer(t, r.ans)
		return
	}
	r := p.lookup(t.EntityID)
	if r == nil {
		c.fail(t, wire.CodeRoute)
		return
	}
	res, err := p.forward(ctx, r, &t.Command)
	if err != nil {
		c.fail(t, errCode(err))
		return
	}
	c.answer(t, wire.Command{Kind: wire.AnsPRES, Body: res})
}

// errCode is the code an error of the proxy answers with.
func errCode(err error) wire.ErrCode {
	var code wire.ErrCode
	if errors.As(err, &code) {
		return code
	}
	return wire.CodeProxy
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
