// Package routes keeps a relay's private-routing sessions to destination
// relays (server/wire SPEC.md §12), for its queue and file endpoints
// alike: one session per destination, shared by every client of the
// relay, so the destination cannot tell the clients apart by session.
//
//	t := routes.New(ctx, routes.Config{MaxRoutes: 1000, Idle: 10 * time.Minute}, open)
//	r, err := t.Open(ctx, dest)            // PRXY: r.Key goes back in PKEY
//	r = t.Lookup(routeID)                  // PFWD
//	ans, err := t.Forward(ctx, r, class, eph, sealed)
//	t.Sweep(time.Now())                    // every minute: idle routes close
//	t.Close()
//
// open dials the destination, asks for its forward key (RKEY → FKEY) and
// derives the layer key. A route ends with its session: when forwarding
// fails on the connection, when the destination answers ROUTE, or when
// the session calls the dead function open was given.
package routes

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
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

// ErrClosed is Open after Close.
var ErrClosed = errors.New("routes: closed")

// Session is a relay's session to a destination's endpoint.
type Session interface {
	// Relay sends one RFWD (class: the answer's, ClassControl on the
	// queue endpoint) and returns RRES's data; an ERR answer is its
	// wire.ErrCode.
	Relay(ctx context.Context, class wire.ChunkClass, layered []byte) ([]byte, error)
	Close() error
}

// Key is what a destination answered to RKEY, checked against its address.
type Key struct {
	Identity, Fwd [wire.KeySize]byte
	Sig           [wire.SignatureSize]byte
}

// Opener connects to dest and returns the session, the destination's
// forward key and the layer key. It calls dead (at most once, perhaps
// later) when the session breaks.
type Opener func(ctx context.Context, dest wire.Address, dead func()) (Session, Key, *[32]byte, error)

// Route is the session to one destination.
type Route struct {
	ID   [wire.RouteIDSize]byte
	Dest wire.Address
	Key  Key

	ready chan struct{} // closed when the fields below are set
	err   error
	sess  Session
	layer *[32]byte
	last  atomic.Int64 // Unix nanoseconds of the last use
	dead  atomic.Bool  // out of the table: no new command
	once  sync.Once    // release
}

// Config bounds a Table.
type Config struct {
	MaxRoutes int           // destinations with a session; past it the least recently used is retired (ERR LIMIT if all are opening)
	Idle      time.Duration // a route unused this long closes
	Timeout   time.Duration // opening a route, and the grace of a retired route's commands in flight
	OnOpen    func()        // called when a route's session opens (metrics); may be nil
}

// Table is a relay's routes. Every route counts in wg from its creation
// until its session is closed (release), so Close waits for all of them.
type Table struct {
	ctx  context.Context
	cfg  Config
	open Opener

	mu     sync.Mutex
	byDest map[wire.Address]*Route
	byID   map[[wire.RouteIDSize]byte]*Route
	// retired routes wait for their commands in flight (retire).
	retired map[*Route]*time.Timer
	closed  bool
	wg      sync.WaitGroup

	opened, forwarded atomic.Int64
}

// New returns an empty table; ctx bounds the openings.
func New(ctx context.Context, cfg Config, open Opener) *Table {
	return &Table{ctx: ctx, cfg: cfg, open: open, retired: make(map[*Route]*time.Timer),
		byDest: make(map[wire.Address]*Route), byID: make(map[[wire.RouteIDSize]byte]*Route)}
}

// Counts returns the routes opened and the commands forwarded so far
// (session reuse = 1 − opened/forwarded).
func (t *Table) Counts() (opened, forwarded int64) { return t.opened.Load(), t.forwarded.Load() }

// Open returns the route to dest, opening it if there is none. Errors:
// wire.CodeLimit (too many routes still opening), wire.CodeProxy wrapping
// why the destination could not be reached, ErrClosed, or ctx's.
func (t *Table) Open(ctx context.Context, dest wire.Address) (*Route, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	r := t.byDest[dest]
	if r == nil {
		if len(t.byID) >= t.cfg.MaxRoutes {
			// Full: the least recently used open route makes room, so
			// sessions that open many routes cannot lock the others
			// out (its clients get ROUTE and ask again).
			evicted := t.leastRecent()
			if evicted == nil {
				t.mu.Unlock()
				return nil, wire.CodeLimit
			}
			t.retireLocked(evicted)
		}
		r = &Route{Dest: dest, ready: make(chan struct{})}
		_, _ = rand.Read(r.ID[:])
		t.byDest[dest] = r
		t.byID[r.ID] = r
		t.wg.Add(1) // the route's, until release
		go t.connect(r)
	}
	t.mu.Unlock()
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

// leastRecent returns the open route used least recently, or nil when
// every route is still opening; t.mu held.
func (t *Table) leastRecent() *Route {
	var old *Route
	for _, r := range t.byID {
		select {
		case <-r.ready:
		default:
			continue
		}
		if old == nil || r.last.Load() < old.last.Load() {
			old = r
		}
	}
	return old
}

func (t *Table) connect(r *Route) {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.Timeout)
	defer cancel()
	sess, key, layer, err := t.open(ctx, r.Dest, func() { t.kill(r) })
	if err != nil {
		r.err = fmt.Errorf("%w: %w", wire.CodeProxy, err)
	} else {
		r.sess, r.Key, r.layer = sess, key, layer
		t.opened.Add(1)
		if t.cfg.OnOpen != nil {
			t.cfg.OnOpen()
		}
	}
	close(r.ready)
	if err != nil || r.dead.Load() {
		// Failed, or removed while it opened (Close, or a dead
		// callback): nobody else releases it.
		t.kill(r)
		t.release(r)
	}
}

// removeLocked takes r out of the table: no new command uses it; t.mu
// held. It reports whether r was still in.
func (t *Table) removeLocked(r *Route) bool {
	if r.dead.Swap(true) {
		return false
	}
	if t.byDest[r.Dest] == r {
		delete(t.byDest, r.Dest)
	}
	delete(t.byID, r.ID)
	return true
}

// kill takes r out of the table and closes its session now: for a
// session that is gone or idle.
func (t *Table) kill(r *Route) {
	t.mu.Lock()
	removed := t.removeLocked(r)
	t.mu.Unlock()
	if removed && isReady(r) {
		go t.release(r)
	}
}

// retire takes r out of the table and closes its session once its
// commands in flight had their time (Config.Timeout): for a route that
// must not take new commands but may still have answers on the way.
func (t *Table) retire(r *Route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.retireLocked(r)
}

// retireLocked is retire with t.mu held.
func (t *Table) retireLocked(r *Route) {
	if !t.removeLocked(r) || !isReady(r) {
		return
	}
	t.retired[r] = time.AfterFunc(t.cfg.Timeout, func() {
		t.mu.Lock()
		delete(t.retired, r)
		t.mu.Unlock()
		t.release(r)
	})
}

// release closes r's session (if it opened) and ends its count in wg.
// Only once r is ready.
func (t *Table) release(r *Route) {
	r.once.Do(func() {
		if r.sess != nil {
			_ = r.sess.Close()
		}
		t.wg.Done()
	})
}

func isReady(r *Route) bool {
	select {
	case <-r.ready:
		return true
	default:
		return false // connect releases it
	}
}

// Lookup returns the open route with this ID, or nil.
func (t *Table) Lookup(id []byte) *Route {
	if len(id) != wire.RouteIDSize {
		return nil
	}
	t.mu.Lock()
	r := t.byID[[wire.RouteIDSize]byte(id)]
	t.mu.Unlock()
	if r == nil || r.dead.Load() || !isReady(r) || r.err != nil {
		return nil
	}
	return r
}

// Forward sends one forwarded command (the client's ephemeral key and
// sealed command) on the route and returns the sealed answer. Errors: the
// destination's wire.ErrCode (ROUTE retires the route: the commands in
// flight on it still get their answers), or wire.CodeProxy wrapping a
// failure on the way (which ends the route, unless it is the deadline).
func (t *Table) Forward(ctx context.Context, r *Route, class wire.ChunkClass, eph [wire.KeySize]byte, sealed []byte) ([]byte, error) {
	inner := make([]byte, 0, wire.KeySize+len(sealed))
	inner = append(append(inner, eph[:]...), sealed...)
	layered, err := wire.SealLayer(rand.Reader, r.layer, inner)
	if err != nil {
		return nil, err
	}
	r.last.Store(time.Now().UnixNano())
	t.forwarded.Add(1)
	res, err := r.sess.Relay(ctx, class, layered)
	var code wire.ErrCode
	switch {
	case errors.As(err, &code):
		if code == wire.CodeRoute {
			t.retire(r)
		}
		return nil, code
	case err != nil:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.kill(r)
		}
		return nil, fmt.Errorf("%w: %w", wire.CodeProxy, err)
	}
	out, err := wire.OpenLayer(r.layer, res)
	if err != nil {
		t.kill(r)
		return nil, fmt.Errorf("%w: %w", wire.CodeProxy, err)
	}
	return out, nil
}

// SweepEvery runs Sweep every d until ctx ends.
func (t *Table) SweepEvery(ctx context.Context, d time.Duration) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			t.Sweep(now)
		case <-ctx.Done():
			return
		}
	}
}

// Sweep closes routes unused for Config.Idle.
func (t *Table) Sweep(now time.Time) {
	t.mu.Lock()
	var idle []*Route
	for _, r := range t.byID {
		if isReady(r) && now.Sub(time.Unix(0, r.last.Load())) >= t.cfg.Idle {
			idle = append(idle, r)
		}
	}
	t.mu.Unlock()
	for _, r := range idle {
		t.kill(r)
	}
}

// Close ends every route and waits until every session is closed, retired
// ones included; routes being opened end with the table's context, which
// the caller cancels first.
func (t *Table) Close() {
	t.mu.Lock()
	t.closed = true
	var rs []*Route
	for _, r := range t.byID {
		if t.removeLocked(r) && isReady(r) {
			rs = append(rs, r)
		}
	}
	// Retired routes wait for their grace; Close does not.
	for r, timer := range t.retired {
		if timer.Stop() {
			rs = append(rs, r)
		}
		delete(t.retired, r)
	}
	t.mu.Unlock()
	for _, r := range rs {
		go t.release(r)
	}
	t.wg.Wait()
}

// ForwardKeyFunc asks a destination for its session's forward key (RKEY →
// FKEY) with the proxy's ephemeral key: client.Client.ForwardKey or
// client.FileClient.ForwardKey.
type ForwardKeyFunc func(context.Context, *ecdh.PrivateKey) (identity, fwd [wire.KeySize]byte, sig [wire.SignatureSize]byte, err error)

// Handshake runs RKEY with a fresh ephemeral key through ask and derives
// the layer key from the answer: the part of an Opener after the dial.
func Handshake(ctx context.Context, ask ForwardKeyFunc) (Key, *[32]byte, error) {
	var key Key
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return key, nil, err
	}
	key.Identity, key.Fwd, key.Sig, err = ask(ctx, eph)
	if err != nil {
		return key, nil, err
	}
	var ephPub [wire.KeySize]byte
	copy(ephPub[:], eph.PublicKey().Bytes())
	layer, err := wire.LayerKey(eph, key.Fwd, ephPub, key.Fwd)
	return key, layer, err
}

// ErrCode is the code a proxy answers an error of Open or Forward with:
// the relay code it carries, else PROXY.
func ErrCode(err error) wire.ErrCode {
	var code wire.ErrCode
	if errors.As(err, &code) {
		return code
	}
	return wire.CodeProxy
}

// Dialer screens and binds a proxy's outgoing connections.
type Dialer struct {
	// AllowPrivate permits destinations on loopback, private, shared
	// (100.64.0.0/10) and link-local addresses; off, they are refused
	// after name resolution, so a client cannot make the relay reach
	// into its own network.
	AllowPrivate bool
	// Bind, if valid, is the local address of outgoing connections.
	Bind netip.Addr
}

// ErrNotPublic refuses a connection to a non-public address.
var ErrNotPublic = errors.New("routes: destination address is not public")

// special are address blocks that are global unicast by the standard
// library's tests but not the public Internet (IANA special-purpose
// registries): shared address space, IETF protocol assignments,
// documentation, benchmarking, reserved, NAT64 and documentation IPv6.
var special = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{"100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "240.0.0.0/4", "64:ff9b::/96", "64:ff9b:1::/48", "2001:db8::/32", "2001::/23"} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// IsPublic reports whether a proxy may connect to ip by default.
func IsPublic(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range special {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Dial returns the WebSocket dial function for client.Options.Dial.
func (d Dialer) Dial() func(ctx context.Context, url string) (client.WebSocket, error) {
	nd := &net.Dialer{Timeout: 15 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		if !d.AllowPrivate && !IsPublic(ap.Addr()) {
			return ErrNotPublic
		}
		return nil
	}}
	if d.Bind.IsValid() {
		nd.LocalAddr = &net.TCPAddr{IP: d.Bind.AsSlice()}
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: nd.DialContext, TLSHandshakeTimeout: 15 * time.Second}}
	return func(ctx context.Context, url string) (client.WebSocket, error) {
		ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc, CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return nil, err
		}
		return client.FromWebSocket(ws), nil
	}
}

// Len is the number of routes held, open or opening.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}
