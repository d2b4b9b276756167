package client

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/wisp-chat/wisp/server/wire"
)

// Private routing (wire SPEC.md §12). A client secures and sends to a
// queue on a relay it did not choose (the destination) through the relay
// this Client is connected to (the proxy), which never learns the queue or
// the command; the destination never learns the client's address:
//
//	p, _ := client.Dial(ctx, ownRelay, client.Options{})
//	err := p.ProxySecure(ctx, dest, sndID, key)       // SKEY, forwarded
//	err = p.ProxySend(ctx, dest, sndID, key, body)    // SEND, forwarded
//
// The first command to a destination asks the proxy for a route (PRXY);
// the client checks the destination's forward key against the key hash in
// dest, so a proxy cannot stand in for the destination. Routes are kept
// and asked for again when the proxy says one is gone. Forwarded commands
// have no order among themselves: wait for one before sending the next to
// the same queue.

// ErrRoute is wrapped by errors of the proxy or of the way to the
// destination (a *RouteError with AtDest false): the command may not have
// reached the destination, and sending it again later is right.
var ErrRoute = errors.New("client: private route failed")

// RouteError is the error of a forwarded command. It names both relays.
type RouteError struct {
	Proxy, Dest wire.Address
	// AtDest is true when the destination answered (Err is then its
	// wire.ErrCode), false when the proxy or the way to the destination
	// failed (Err wraps ErrRoute).
	AtDest bool
	// Code is the proxy's own answer when it refused or failed (ROUTE,
	// PROXY, LIMIT, AUTH, ...), zero otherwise. It is not wrapped, so
	// that callers treating relay codes as final do not take it for the
	// destination's.
	Code wire.ErrCode
	Err  error
}

func (e *RouteError) Error() string {
	if e.AtDest {
		return fmt.Sprintf("relay %s refused a command sent through %s: %v", e.Dest.Host, e.Proxy.Host, e.Err)
	}
	return fmt.Sprintf("could not deliver through %s to %s: %v", e.Proxy.Host, e.Dest.Host, e.Err)
}

func (e *RouteError) Unwrap() error { return e.Err }

// routes caches the proxy's routes by destination. Concurrent first
// commands to one destination share one PRXY (the proxy's PRXY budget is
// small).
type routes struct {
	mu      sync.Mutex
	m       map[wire.Address]route
	pending map[wire.Address]*routeCall
}

// routeCall is a PRXY in progress that other callers wait for.
type routeCall struct {
	done chan struct{}
	r    route
	err  error
}

// resolve returns the cached route to dest, or asks for it once for all
// the callers that want it meanwhile.
func (rs *routes) resolve(ctx context.Context, dest wire.Address, ask func() (route, error)) (route, error) {
	rs.mu.Lock()
	if r, ok := rs.m[dest]; ok {
		rs.mu.Unlock()
		return r, nil
	}
	if call := rs.pending[dest]; call != nil {
		rs.mu.Unlock()
		select {
		case <-call.done:
			return call.r, call.err
		case <-ctx.Done():
			return route{}, ctx.Err()
		}
	}
	call := &routeCall{done: make(chan struct{})}
	if rs.pending == nil {
		rs.pending = make(map[wire.Address]*routeCall)
	}
	rs.pending[dest] = call
	rs.mu.Unlock()
	call.r, call.err = ask()
	rs.mu.Lock()
	delete(rs.pending, dest)
	if call.err == nil {
		if rs.m == nil {
			rs.m = make(map[wire.Address]route)
		}
		rs.m[dest] = call.r
	}
	rs.mu.Unlock()
	close(call.done)
	return call.r, call.err
}

// drop forgets r unless it was replaced meanwhile.
func (rs *routes) drop(dest wire.Address, r route) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m[dest] == r {
		delete(rs.m, dest)
	}
}

type route struct {
	id  [wire.RouteIDSize]byte
	fwd [wire.KeySize]byte
}

// ProxySecure secures a queue on dest through this relay (SKEY, forwarded).
func (c *Client) ProxySecure(ctx context.Context, dest wire.Address, sndID wire.QueueID, key ed25519.PrivateKey) error {
	cmd := wire.Command{Kind: wire.CmdSKEY}
	copy(cmd.AuthKey[:], key.Public().(ed25519.PublicKey))
	return c.forward(ctx, dest, &wire.Transmission{EntityID: sndID[:], Command: cmd}, key)
}

// ProxySend sends one message to a queue on dest through this relay
// (SEND, forwarded); nil means the destination has it on disk.
func (c *Client) ProxySend(ctx context.Context, dest wire.Address, sndID wire.QueueID, key ed25519.PrivateKey, body []byte) error {
	if len(body) > wire.MaxBodySize {
		return fmt.Errorf("client: body is %d bytes: %w", len(body), wire.CodeLarge)
	}
	return c.forward(ctx, dest, &wire.Transmission{EntityID: sndID[:], Command: wire.Command{Kind: wire.CmdSEND, Body: body}}, key)
}

func (c *Client) forward(ctx context.Context, dest wire.Address, t *wire.Transmission, key ed25519.PrivateKey) error {
	if dest.KeyHash == c.addr.KeyHash {
		return &RouteError{Proxy: c.addr, Dest: dest, Err: fmt.Errorf("%w: a relay is not its own proxy", ErrRoute)}
	}
	corr := make([]byte, 8)
	_, _ = rand.Read(corr)
	t.CorrID = corr
	// A route the proxy no longer has (its session to the destination
	// ended) is asked for again once.
	for attempt := 0; ; attempt++ {
		r, err := c.route(ctx, dest)
		if err != nil {
			return err
		}
		ans, gone, err := c.forwardOnce(ctx, dest, r, t, key)
		if gone {
			c.routes.drop(dest, r)
			if attempt == 0 {
				continue
			}
		}
		if err != nil {
			return err
		}
		if ans.Kind == wire.AnsERR {
			return &RouteError{Proxy: c.addr, Dest: dest, AtDest: true, Err: ans.Code}
		}
		if ans.Kind != wire.AnsOK {
			return &RouteError{Proxy: c.addr, Dest: dest, AtDest: true, Err: fmt.Errorf("%w: %s", ErrUnexpected, ans.Kind)}
		}
		return nil
	}
}

// forwardOnce sends one PFWD. gone reports a route to ask for again.
func (c *Client) forwardOnce(ctx context.Context, dest wire.Address, r route, t *wire.Transmission, key ed25519.PrivateKey) (ans wire.Command, gone bool, err error) {
	f, err := wire.NewForward(rand.Reader, r.fwd, t, key)
	if err != nil {
		return ans, false, err
	}
	cmd := wire.Command{Kind: wire.CmdPFWD, DHKey: f.Eph, Body: f.Sealed}
	res, err := c.do(ctx, &request{t: wire.Transmission{EntityID: r.id[:], Command: cmd}})
	switch {
	case err != nil:
		return ans, routeGone(err), routeError(c.addr, dest, err)
	case res.Kind != wire.AnsPRES:
		return ans, false, &RouteError{Proxy: c.addr, Dest: dest, Err: fmt.Errorf("%w: %w: %s", ErrRoute, ErrUnexpected, res.Kind)}
	}
	ans, err = f.OpenAnswer(res.Body)
	if err != nil {
		// The proxy changed or made up the answer, and the destination
		// may have run the command: the route is dropped, and the
		// caller decides whether to send again.
		c.routes.drop(dest, r)
		return ans, false, &RouteError{Proxy: c.addr, Dest: dest, Err: fmt.Errorf("%w: %w", ErrRoute, err)}
	}
	return ans, false, nil
}

// route returns the cached route to dest or asks the proxy for one.
func (c *Client) route(ctx context.Context, dest wire.Address) (route, error) {
	return c.routes.resolve(ctx, dest, func() (route, error) {
		ans, err := c.do(ctx, &request{t: wire.Transmission{Command: wire.Command{Kind: wire.CmdPRXY, Relay: dest}}})
		if err = expect(ans, err, wire.AnsPKEY); err != nil {
			return route{}, routeError(c.addr, dest, err)
		}
		if err := wire.VerifyForwardKey(dest.KeyHash, ans.Identity, ans.DHKey, ans.KeySig); err != nil {
			return route{}, &RouteError{Proxy: c.addr, Dest: dest, Err: fmt.Errorf("%w: %w", ErrRoute, err)}
		}
		return route{id: ans.Route, fwd: ans.DHKey}, nil
	})
}

// ForwardKey asks a destination relay for this session's forward key
// (RKEY → FKEY): the proxy side of private routing. eph is the proxy's
// ephemeral X25519 key for the layer key (wire.LayerKey). The answer is
// checked against the relay's address.
func (c *Client) ForwardKey(ctx context.Context, eph *ecdh.PrivateKey) (identity, fwd [wire.KeySize]byte, sig [wire.SignatureSize]byte, err error) {
	cmd := wire.Command{Kind: wire.CmdRKEY}
	copy(cmd.DHKey[:], eph.PublicKey().Bytes())
	ans, err := c.do(ctx, &request{t: wire.Transmission{Command: cmd}})
	if err = expect(ans, err, wire.AnsFKEY); err != nil {
		return identity, fwd, sig, err
	}
	if err := wire.VerifyForwardKey(c.addr.KeyHash, ans.Identity, ans.DHKey, ans.KeySig); err != nil {
		return identity, fwd, sig, err
	}
	return ans.Identity, ans.DHKey, ans.KeySig, nil
}

// Relay sends one forwarded command to a destination relay (RFWD) and
// returns RRES's argument: the proxy side of private routing.
func (c *Client) Relay(ctx context.Context, layered []byte) ([]byte, error) {
	ans, err := c.do(ctx, &request{t: wire.Transmission{Command: wire.Command{Kind: wire.CmdRFWD, Body: layered}}})
	if err = expect(ans, err, wire.AnsRRES); err != nil {
		return nil, err
	}
	return ans.Body, nil
}
