package agent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// Relays is a pool of relay clients, one per relay address, shared by the
// connections of a profile. It dials lazily, keeps retrying a relay that is
// down, subscribes queues as soon as their relay is reachable (and again
// after every reconnect, which the client does), and hands every delivered
// message to the handler, acknowledging it when the handler says so.
type Relays struct {
	opts     client.Options
	password func(wire.Address) []byte
	// allowLocal lets it dial relays on loopback and private addresses;
	// without it, they fail with ErrLocalRelay and are never dialled.
	allowLocal atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	relays  map[wire.Address]*relayConn
	isUp    map[wire.Address]bool // connected now (report)
	handler func(rcvID wire.QueueID, m wire.Message) disposition
	status  func(relay wire.Address, up bool, err error)
	kick    chan struct{} // closed by Reconnect
	onUp    func()        // the agent pokes its outbox workers
	routing Routing       // private routing; nil: every relay directly
}

// Routing is the private-routing policy (server/wire SPEC.md §12): for a
// relay that commands must reach, it returns the relay they go through
// (proxy) and true, or false to go to dest directly (a relay the user
// chose). A zero proxy with true means there is no relay to go through:
// the command fails with ErrNoProxy rather than going direct.
type Routing func(dest wire.Address) (proxy wire.Address, private bool)

// ErrNoProxy is a command to a relay the user did not choose while
// private routing is on and no relay of the user's can forward it.
var ErrNoProxy = errors.New("agent: private routing is on and none of your relays can forward this")

// SetRouting installs the private-routing policy. Commands to queues of
// other people (SKEY and SEND) then go through the proxy it names and the
// pool never connects to their relays.
func (r *Relays) SetRouting(f Routing) {
	r.mu.Lock()
	r.routing = f
	r.mu.Unlock()
}

// via returns the proxy for commands to dest, if they must go through one.
func (r *Relays) via(dest wire.Address) (proxy wire.Address, private bool, err error) {
	r.mu.Lock()
	f := r.routing
	r.mu.Unlock()
	if f == nil {
		return proxy, false, nil
	}
	proxy, private = f(dest)
	if !private {
		return proxy, false, nil
	}
	if proxy == (wire.Address{}) || proxy.KeyHash == dest.KeyHash {
		return proxy, true, &client.RouteError{Proxy: proxy, Dest: dest, Err: fmt.Errorf("%w: %w", client.ErrRoute, ErrNoProxy)}
	}
	return proxy, true, nil
}

// proxyClient returns the client of the proxy relay; an unreachable proxy
// is a RouteError naming both relays.
func (r *Relays) proxyClient(ctx context.Context, proxy, dest wire.Address) (*client.Client, error) {
	c, err := r.get(ctx, proxy)
	if err != nil {
		return nil, &client.RouteError{Proxy: proxy, Dest: dest, Err: fmt.Errorf("%w: %w", client.ErrRoute, err)}
	}
	return c, nil
}

// relaySub is a subscription and the relay it is on.
type relaySub struct {
	relay wire.Address
	sub   client.Subscription
}

// relayConn is one relay's client, once it is connected.
type relayConn struct {
	addr  wire.Address
	ready chan struct{} // closed when c is set
	c     *client.Client
	subs  map[wire.QueueID]client.Subscription
}

// RelayStatus reports relay connectivity to the UI ("connecting…").
type RelayStatus func(relay wire.Address, up bool, err error)

// NewRelays returns an empty pool. password returns the relay password for
// NEW (nil for open relays); it may be nil.
func NewRelays(opts client.Options, password func(wire.Address) []byte, status RelayStatus) *Relays {
	ctx, cancel := context.WithCancel(context.Background())
	if status == nil {
		status = func(wire.Address, bool, error) {}
	}
	return &Relays{
		opts: opts, password: password, ctx: ctx, cancel: cancel, status: status,
		relays: make(map[wire.Address]*relayConn), isUp: make(map[wire.Address]bool),
		kick: make(chan struct{}),
	}
}

// AllowLocalRelays lets the pool dial relays on loopback and private
// addresses (see CheckRelay): only for a page loaded from this machine
// (LoopbackOrigin), in development and tests. Call it before first use.
func (r *Relays) AllowLocalRelays() { r.allowLocal.Store(true) }

// check refuses a relay the pool may not dial.
func (r *Relays) check(addr wire.Address) error {
	return CheckRelay(addr, r.allowLocal.Load())
}

// setHandler installs the delivery handler (the agent).
func (r *Relays) setHandler(h func(rcvID wire.QueueID, m wire.Message) disposition) {
	r.mu.Lock()
	r.handler = h
	r.mu.Unlock()
}

// setConnected installs the hook called when a relay (re)connects.
func (r *Relays) setConnected(f func()) {
	r.mu.Lock()
	r.onUp = f
	r.mu.Unlock()
}

func (r *Relays) up(addr wire.Address) {
	r.report(addr, true, nil)
	r.mu.Lock()
	f := r.onUp
	r.mu.Unlock()
	if f != nil {
		f()
	}
}

// Close closes every client.
func (r *Relays) Close() {
	r.mu.Lock()
	r.cancel() // under the lock: dialLoop checks it before publishing a client
	clients := make([]*client.Client, 0, len(r.relays))
	for _, rc := range r.relays {
		if rc.c != nil {
			clients = append(clients, rc.c)
		}
	}
	r.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
	r.wg.Wait()
}

// Reconnect makes every relay that is down try again now, for when the
// browser comes back online or wakes up: relays never reached yet, and
// clients waiting in their reconnect backoff.
func (r *Relays) Reconnect() {
	r.mu.Lock()
	close(r.kick)
	r.kick = make(chan struct{})
	clients := make([]*client.Client, 0, len(r.relays))
	for _, rc := range r.relays {
		if rc.c != nil {
			clients = append(clients, rc.c)
		}
	}
	r.mu.Unlock()
	for _, c := range clients {
		c.Reconnect()
	}
}

func (r *Relays) kicked() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kick
}

func (r *Relays) conn(addr wire.Address) *relayConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rc, ok := r.relays[addr]; ok {
		return rc
	}
	rc := &relayConn{addr: addr, ready: make(chan struct{}), subs: make(map[wire.QueueID]client.Subscription)}
	r.relays[addr] = rc
	r.wg.Add(1)
	go r.dialLoop(rc)
	return rc
}

// dialLoop dials until the first connection succeeds; the client keeps it
// up from then on.
func (r *Relays) dialLoop(rc *relayConn) {
	defer r.wg.Done()
	backoff := 250 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
		c, err := client.Dial(ctx, rc.addr, r.opts)
		cancel()
		if err == nil {
			r.mu.Lock()
			if r.ctx.Err() != nil { // closed while dialling
				r.mu.Unlock()
				c.Close()
				return
			}
			rc.c = c
			subs := make([]client.Subscription, 0, len(rc.subs))
			for _, s := range rc.subs {
				subs = append(subs, s)
			}
			r.mu.Unlock()
			close(rc.ready)
			if len(subs) > 0 {
				c.Subscribe(r.ctx, subs...)
			}
			r.up(rc.addr)
			r.pump(rc)
			return
		}
		if r.ctx.Err() != nil {
			return
		}
		r.report(rc.addr, false, err)
		d := backoff/2 + mrand.N(backoff/2+1)
		backoff = min(backoff*2, 30*time.Second)
		select {
		case <-time.After(d):
		case <-r.kicked():
			backoff = 250 * time.Millisecond
		case <-r.ctx.Done():
			return
		}
	}
}

// pump reads a client's events until it closes.
func (r *Relays) pump(rc *relayConn) {
	for ev := range rc.c.Events() {
		switch ev.Kind {
		case client.EventMessage:
			r.mu.Lock()
			h := r.handler
			sub, ok := rc.subs[ev.RcvID]
			r.mu.Unlock()
			if h == nil || !ok {
				continue
			}
			r.dispose(rc, sub, ev.Message, h(ev.RcvID, ev.Message), h)
		case client.EventConnected:
			r.up(rc.addr)
		case client.EventDisconnected:
			r.report(rc.addr, false, ev.Err)
		case client.EventEnd:
			// Another session (another tab or device with this profile's
			// keys) took the subscription. The Web Lock prevents it in the
			// browser; report it as the relay being unavailable.
			r.report(rc.addr, false, errors.New("another session took over this queue"))
		}
	}
}

// dispose acts on the handler's answer for a delivered message: ACK it,
// leave it, or offer it to the handler again after a pause (1–2 s,
// doubling to a minute) until it is stored; the relay sends nothing more
// on that queue meanwhile.
func (r *Relays) dispose(rc *relayConn, sub client.Subscription, m wire.Message, d disposition, h func(wire.QueueID, wire.Message) disposition) {
	r.retry(rc, sub, m, d, h, time.Second)
}

func (r *Relays) retry(rc *relayConn, sub client.Subscription, m wire.Message, d disposition, h func(wire.QueueID, wire.Message) disposition, pause time.Duration) {
	switch d {
	case dispAck:
		go func() {
			ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
			defer cancel()
			_ = rc.c.Ack(ctx, sub, m.ID) // a lost ACK means a redelivery, which is handled
		}()
	case dispRetry:
		go func() {
			select {
			case <-time.After(pause + mrand.N(pause)):
				r.retry(rc, sub, m, h(sub.RcvID, m), h, min(2*pause, time.Minute))
			case <-r.ctx.Done():
			}
		}()
	}
}

// report records whether a relay is connected and tells the status
// callback.
func (r *Relays) report(addr wire.Address, up bool, err error) {
	r.mu.Lock()
	r.isUp[addr] = up
	r.mu.Unlock()
	r.status(addr, up, err)
}

// Connected reports whether the relay's connection is up now.
func (r *Relays) Connected(addr wire.Address) bool { return r.connected(addr) }

// connected reports whether the relay's connection is up now.
func (r *Relays) connected(addr wire.Address) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.isUp[addr]
}

// ack acknowledges a message the handler kept (dispKeep) and
// handled later; a lost ACK means a redelivery, which is handled.
func (r *Relays) ack(addr wire.Address, rcvID wire.QueueID, msgID wire.MsgID) {
	r.mu.Lock()
	rc := r.relays[addr]
	var sub client.Subscription
	var c *client.Client
	ok := false
	if rc != nil {
		sub, ok = rc.subs[rcvID]
		c = rc.c
	}
	r.mu.Unlock()
	if !ok || c == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		defer cancel()
		_ = c.Ack(ctx, sub, msgID)
	}()
}

// get waits until the relay is connected.
func (r *Relays) get(ctx context.Context, addr wire.Address) (*client.Client, error) {
	if err := r.check(addr); err != nil {
		return nil, err
	}
	rc := r.conn(addr)
	select {
	case <-rc.ready:
		return rc.c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("relay %s is unreachable: %w", addr.Host, ctx.Err())
	case <-r.ctx.Done():
		return nil, ErrClosed
	}
}

func (r *Relays) newQueue(ctx context.Context, addr wire.Address) (client.QueueInfo, client.RecipientKeys, error) {
	keys, err := client.NewRecipientKeys()
	if err != nil {
		return client.QueueInfo{}, keys, err
	}
	c, err := r.get(ctx, addr)
	if err != nil {
		return client.QueueInfo{}, keys, err
	}
	var pw []byte
	if r.password != nil {
		pw = r.password(addr)
	}
	q, err := c.New(ctx, keys, pw)
	return q, keys, err
}

func (r *Relays) secure(ctx context.Context, addr wire.Address, sndID wire.QueueID, key ed25519.PrivateKey) error {
	if proxy, private, err := r.via(addr); err != nil {
		return err
	} else if private {
		c, err := r.proxyClient(ctx, proxy, addr)
		if err != nil {
			return err
		}
		return c.ProxySecure(ctx, addr, sndID, key)
	}
	c, err := r.get(ctx, addr)
	if err != nil {
		return err
	}
	return c.Secure(ctx, sndID, key)
}

func (r *Relays) send(ctx context.Context, addr wire.Address, sndID wire.QueueID, key ed25519.PrivateKey, body []byte) error {
	if proxy, private, err := r.via(addr); err != nil {
		return err
	} else if private {
		c, err := r.proxyClient(ctx, proxy, addr)
		if err != nil {
			return err
		}
		return c.ProxySend(ctx, addr, sndID, key, body)
	}
	c, err := r.get(ctx, addr)
	if err != nil {
		return err
	}
	return c.Send(ctx, sndID, key, body)
}

// Subscription returns one of the queues subscribed on addr, if any: the
// proof that admits us to that relay's file endpoint as a proxy
// (client.Proof).
func (r *Relays) Subscription(addr wire.Address) (client.Subscription, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rc := r.relays[addr]; rc != nil {
		for _, s := range rc.subs {
			return s, true
		}
	}
	return client.Subscription{}, false
}

// subscribe remembers sub and subscribes it now if the relay is connected,
// or as soon as it is. It does not wait for an unreachable relay.
func (r *Relays) subscribe(ctx context.Context, addr wire.Address, sub client.Subscription) error {
	return r.subscribeAll(ctx, []relaySub{{addr, sub}})[addr]
}

func (r *Relays) deleteQueue(ctx context.Context, addr wire.Address, sub client.Subscription) error {
	c, err := r.get(ctx, addr)
	if err != nil {
		return err
	}
	err = c.Delete(ctx, sub)
	r.mu.Lock()
	delete(r.relays[addr].subs, sub.RcvID)
	r.mu.Unlock()
	return err
}

// subscribeAll subscribes many queues, one batch per relay; it returns the
// relays whose batch failed (the subscriptions are kept and retried when
// those relays reconnect).
func (r *Relays) subscribeAll(ctx context.Context, subs []relaySub) map[wire.Address]error {
	byRelay := map[wire.Address][]client.Subscription{}
	for _, s := range subs {
		byRelay[s.relay] = append(byRelay[s.relay], s.sub)
	}
	failed := map[wire.Address]error{}
	for addr, list := range byRelay {
		if err := r.check(addr); err != nil {
			failed[addr] = err
			continue
		}
		rc := r.conn(addr)
		r.mu.Lock()
		for _, s := range list {
			rc.subs[s.RcvID] = s
		}
		c := rc.c
		r.mu.Unlock()
		if c == nil {
			continue // dialLoop subscribes them on connect
		}
		for _, err := range c.Subscribe(ctx, list...) {
			if err != nil {
				failed[addr] = err
				break
			}
		}
	}
	return failed
}
