// Package client is a Go client of the Wisp relay protocol. It compiles
// for GOOS=js GOARCH=wasm (the browser core uses it over the browser's
// WebSocket) as well as natively.
//
// Use:
//
//	c, err := client.Dial(ctx, addr, client.Options{})
//	defer c.Close()
//	keys, err := client.NewRecipientKeys()
//	q, err := c.New(ctx, keys, nil)          // NEW → IDS
//	sub := q.Subscription(keys)
//	errs := c.Subscribe(ctx, sub)             // remembered: resubscribed after reconnects
//	// the sender side, on its own relay connection:
//	err = c.Secure(ctx, q.SndID, senderKey)   // SKEY
//	err = c.Send(ctx, q.SndID, senderKey, body)
//	for ev := range c.Events() {              // MSG (opened), END, connection changes
//		if ev.Kind == client.EventMessage { c.Ack(ctx, sub, ev.Message.ID) }
//	}
//
// Commands issued concurrently are packed into shared blocks. When the
// connection drops, commands in flight fail with ErrConnectionLost (the
// caller decides whether to retry: a retried SEND may be stored twice),
// new commands wait for the next connection, and the client reconnects with
// jittered exponential backoff and resubscribes every remembered queue,
// packing the SUB commands into as few blocks as fit.
//
// File chunks go through a FileClient on the relay's file endpoint
// (wire.FilesPath, SPEC.md "File chunks"), one connection per relay:
//
//	fc, err := client.DialFiles(ctx, addr, client.Options{})
//	snd, rcpts, err := fc.CreateChunk(ctx, wire.Class1M, 2, nil) // FNEW: 2 recipients, padded to 2
//	err = fc.Upload(ctx, snd, chunk)        // FPUT: exactly 1 MiB of E2E ciphertext
//	// rcpts[i].MarshalBinary() goes to recipient i in the file description;
//	// each recipient, on its own FileClient:
//	chunk, err := fc.Download(ctx, rcpt)    // FGET: relay layer opened; verify E2E
//	err = fc.Ack(ctx, rcpt)                 // FACK: the last one deletes the chunk
//	err = fc.DeleteChunk(ctx, snd)          // FDEL by the sender
//
// Calls from several goroutines are in flight together on the connection.
package client

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2" // backoff jitter only
	"sync"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
)

// Errors callers branch on. Relay answers come back as wire.ErrCode.
var (
	ErrClosed         = errors.New("client: closed")
	ErrConnectionLost = errors.New("client: connection lost before the answer")
	ErrUnexpected     = errors.New("client: unexpected answer")
	ErrNotSubscribed  = errors.New("client: queue not subscribed")
)

// Options tune a Client. Zero values pick the defaults in brackets.
type Options struct {
	MinBackoff   time.Duration // first reconnect delay [250ms]
	MaxBackoff   time.Duration // longest reconnect delay [30s]
	PingInterval time.Duration // app PING after this much silence [20s]
	PingTimeout  time.Duration // drop the connection without PONG [15s]
	DialTimeout  time.Duration // WebSocket dial + handshake [15s]
	EventBuffer  int           // size of the Events channel [256]
	// SHA256, if set, hashes what file uploads sign (wire.Session.SHA256):
	// the browser core passes WebCrypto's. Nil: crypto/sha256.
	SHA256 func(parts ...[]byte) ([32]byte, error)
	// Dial, if set, opens the WebSocket instead of the default (coder/
	// websocket natively, the browser's WebSocket under GOOS=js): a relay
	// acting as a proxy binds and screens its outgoing connections with
	// it (FromWebSocket wraps what it opens).
	Dial func(ctx context.Context, url string) (WebSocket, error)
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.MinBackoff, 250*time.Millisecond)
	def(&o.MaxBackoff, 30*time.Second)
	def(&o.PingInterval, 20*time.Second)
	def(&o.PingTimeout, 15*time.Second)
	def(&o.DialTimeout, 15*time.Second)
	if o.EventBuffer <= 0 {
		o.EventBuffer = 256
	}
}

// EventKind says what an Event carries.
type EventKind uint8

// Event kinds.
const (
	// EventMessage: a MSG pushed on a subscribed queue, already opened.
	EventMessage EventKind = iota + 1
	// EventEnd: another session took the subscription of RcvID.
	EventEnd
	// EventConnected: a (re)connection and its resubscription finished.
	EventConnected
	// EventDisconnected: the connection dropped; Err says why.
	EventDisconnected
)

// Event is something the relay pushed or a connection change.
type Event struct {
	Kind    EventKind
	RcvID   wire.QueueID
	Message wire.Message
	Err     error
}

// RecipientKeys are the fresh keys of one queue's recipient.
type RecipientKeys struct {
	Auth ed25519.PrivateKey
	DH   *ecdh.PrivateKey
}

// NewRecipientKeys generates fresh recipient keys; never reuse them.
func NewRecipientKeys() (RecipientKeys, error) {
	_, auth, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return RecipientKeys{}, fmt.Errorf("client: auth key: %w", err)
	}
	dh, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return RecipientKeys{}, fmt.Errorf("client: dh key: %w", err)
	}
	return RecipientKeys{Auth: auth, DH: dh}, nil
}

// QueueInfo is the relay's answer to NEW.
type QueueInfo struct {
	RcvID   wire.QueueID
	SndID   wire.QueueID
	RelayDH [wire.KeySize]byte
}

// Subscription is what the client needs to receive on a queue.
type Subscription struct {
	RcvID  wire.QueueID
	Auth   ed25519.PrivateKey
	BoxKey *[32]byte
}

// Subscription derives the receiving state from the NEW answer and keys.
func (q QueueInfo) Subscription(k RecipientKeys) Subscription {
	var priv [32]byte
	copy(priv[:], k.DH.Bytes())
	defer clear(priv[:])
	return Subscription{RcvID: q.RcvID, Auth: k.Auth, BoxKey: wire.BoxKey(&q.RelayDH, &priv)}
}

type request struct {
	t    wire.Transmission
	key  ed25519.PrivateKey // nil: unsigned
	resp chan result
}

type result struct {
	cmd wire.Command
	err error
}

// Client is a reconnecting relay client. It is safe for concurrent use.
type Client struct {
	addr   wire.Address
	opts   Options
	events chan Event
	reqs   chan *request
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	subs map[wire.QueueID]Subscription
	kick chan struct{} // Reconnect: end the current backoff wait

	routes routes // private routing through this relay (proxy.go)
}

// Dial connects to the relay and starts the background loop that keeps
// the connection up. The first connection must succeed.
func Dial(ctx context.Context, addr wire.Address, opts Options) (*Client, error) {
	opts.defaults()
	cctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		addr: addr, opts: opts, events: make(chan Event, opts.EventBuffer),
		reqs: make(chan *request), ctx: cctx, cancel: cancel, done: make(chan struct{}),
		subs: make(map[wire.QueueID]Subscription), kick: make(chan struct{}, 1),
	}
	first, err := c.connect(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	go c.run(first)
	return c, nil
}

// Reconnect makes a client that is waiting to reconnect try at once (the
// network came back, the device woke up). A connected client is unaffected.
func (c *Client) Reconnect() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Events returns the channel of pushed messages and connection changes.
// It is closed by Close. Read it promptly: the reader waits for room.
func (c *Client) Events() <-chan Event { return c.events }

// Close ends the connection and the background loop. It returns after
// every goroutine of the client is done; the Events channel is closed last,
// so no event is sent after it (a message arriving during Close is dropped).
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	return nil
}

func (c *Client) emit(ev Event) {
	select {
	case c.events <- ev:
	case <-c.ctx.Done():
	}
}

func (c *Client) run(cn *conn) {
	var bg sync.WaitGroup
	defer close(c.done)
	// Every goroutine that may emit is done before events closes: the
	// resubscribers here, the connection's reader inside cn.serve (which
	// returns only after it), and run itself.
	defer close(c.events)
	defer bg.Wait()
	backoff := c.opts.MinBackoff
	for first := true; ; first = false {
		if cn != nil {
			bg.Go(func() {
				// Queues subscribed on the first connection were sent SUB
				// by Subscribe itself; a second SUB would redeliver.
				if !first {
					c.resubscribe(cn)
				}
				c.emit(Event{Kind: EventConnected})
			})
			err := cn.serve(c)
			if c.ctx.Err() != nil {
				return
			}
			c.emit(Event{Kind: EventDisconnected, Err: err})
			backoff = c.opts.MinBackoff
		}
		// Equal jitter: half fixed, half random, so a relay restart does
		// not bring every client back in the same instant.
		d := backoff/2 + mrand.N(backoff/2+1)
		select {
		case <-time.After(d):
			backoff = min(backoff*2, c.opts.MaxBackoff)
		case <-c.kick:
			backoff = c.opts.MinBackoff
		case <-c.ctx.Done():
			return
		}
		var err error
		cn, err = c.connect(c.ctx)
		if err != nil {
			cn = nil
			if c.ctx.Err() != nil {
				return
			}
			c.emit(Event{Kind: EventDisconnected, Err: err})
		}
	}
}

func (c *Client) resubscribe(cn *conn) {
	c.mu.Lock()
	subs := make([]Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	reqs := make([]*request, len(subs))
	for i, s := range subs {
		reqs[i] = subRequest(s)
	}
	cn.enqueue(reqs...)
	for i, r := range reqs {
		select {
		case res := <-r.resp:
			if res.err == nil && res.cmd.Kind == wire.AnsERR && res.cmd.Code == wire.CodeAuth {
				c.Unsubscribe(subs[i].RcvID) // deleted meanwhile
			}
		case <-c.ctx.Done():
			return
		}
	}
}

func subRequest(s Subscription) *request {
	return &request{
		t:    wire.Transmission{EntityID: s.RcvID[:], Command: wire.Command{Kind: wire.CmdSUB}},
		key:  s.Auth,
		resp: make(chan result, 1),
	}
}

// do sends one command on the current connection and waits for the answer.
func (c *Client) do(ctx context.Context, r *request) (wire.Command, error) {
	if r.resp == nil {
		r.resp = make(chan result, 1)
	}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return wire.Command{}, ctx.Err()
	case <-c.ctx.Done():
		return wire.Command{}, ErrClosed
	}
	select {
	case res := <-r.resp:
		if res.err == nil && res.cmd.Kind == wire.AnsERR {
			return res.cmd, res.cmd.Code
		}
		return res.cmd, res.err
	case <-ctx.Done():
		return wire.Command{}, ctx.Err()
	case <-c.ctx.Done():
		return wire.Command{}, ErrClosed
	}
}

func expect(cmd wire.Command, err error, k wire.Kind) error {
	if err != nil {
		return err
	}
	if cmd.Kind != k {
		return fmt.Errorf("%w: %s, want %s", ErrUnexpected, cmd.Kind, k)
	}
	return nil
}

// New creates a queue (NEW). password is the relay's, if it has one.
func (c *Client) New(ctx context.Context, keys RecipientKeys, password []byte) (QueueInfo, error) {
	cmd := wire.Command{Kind: wire.CmdNEW, Password: password}
	copy(cmd.AuthKey[:], keys.Auth.Public().(ed25519.PublicKey))
	copy(cmd.DHKey[:], keys.DH.PublicKey().Bytes())
	ans, err := c.do(ctx, &request{t: wire.Transmission{Command: cmd}, key: keys.Auth})
	if err := expect(ans, err, wire.AnsIDS); err != nil {
		return QueueInfo{}, err
	}
	return QueueInfo{RcvID: ans.RcvID, SndID: ans.SndID, RelayDH: ans.DHKey}, nil
}

// Secure secures a queue with the sender's key (SKEY).
func (c *Client) Secure(ctx context.Context, sndID wire.QueueID, key ed25519.PrivateKey) error {
	cmd := wire.Command{Kind: wire.CmdSKEY}
	copy(cmd.AuthKey[:], key.Public().(ed25519.PublicKey))
	ans, err := c.do(ctx, &request{t: wire.Transmission{EntityID: sndID[:], Command: cmd}, key: key})
	return expect(ans, err, wire.AnsOK)
}

// Send sends one message (SEND); nil means the relay has it on disk.
func (c *Client) Send(ctx context.Context, sndID wire.QueueID, key ed25519.PrivateKey, body []byte) error {
	if len(body) > wire.MaxBodySize {
		return fmt.Errorf("client: body is %d bytes: %w", len(body), wire.CodeLarge)
	}
	ans, err := c.do(ctx, &request{t: wire.Transmission{EntityID: sndID[:], Command: wire.Command{Kind: wire.CmdSEND, Body: body}}, key: key})
	return expect(ans, err, wire.AnsOK)
}

// Subscribe subscribes to queues (SUB), all packed into shared blocks, and
// remembers them for resubscription. errs[i] is the result for subs[i].
func (c *Client) Subscribe(ctx context.Context, subs ...Subscription) []error {
	c.mu.Lock()
	for _, s := range subs {
		c.subs[s.RcvID] = s
	}
	c.mu.Unlock()
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() {
			ans, err := c.do(ctx, subRequest(s))
			errs[i] = expect(ans, err, wire.AnsOK)
		})
	}
	wg.Wait()
	c.mu.Lock()
	for i, s := range subs {
		var code wire.ErrCode
		if errors.As(errs[i], &code) {
			delete(c.subs, s.RcvID)
		}
	}
	c.mu.Unlock()
	return errs
}

// Unsubscribe forgets a queue locally (no command is sent; the relay drops
// the subscription when the connection ends or another session takes it).
func (c *Client) Unsubscribe(rcvID wire.QueueID) {
	c.mu.Lock()
	delete(c.subs, rcvID)
	c.mu.Unlock()
}

func (c *Client) recipient(ctx context.Context, s Subscription, cmd wire.Command) (wire.Command, error) {
	return c.do(ctx, &request{t: wire.Transmission{EntityID: s.RcvID[:], Command: cmd}, key: s.Auth})
}

// Ack acknowledges a delivered message (ACK); the next one follows.
func (c *Client) Ack(ctx context.Context, s Subscription, id wire.MsgID) error {
	ans, err := c.recipient(ctx, s, wire.Command{Kind: wire.CmdACK, MsgID: id})
	return expect(ans, err, wire.AnsOK)
}

// Get fetches the oldest message without subscribing (GET); ok is false
// when the queue is empty. The message must still be acknowledged.
func (c *Client) Get(ctx context.Context, s Subscription) (m wire.Message, ok bool, err error) {
	ans, err := c.recipient(ctx, s, wire.Command{Kind: wire.CmdGET})
	if err != nil {
		return m, false, err
	}
	switch ans.Kind {
	case wire.AnsOK:
		return m, false, nil
	case wire.AnsMSG:
		m, err = wire.OpenMessage(s.BoxKey, ans.MsgID, ans.Body)
		return m, err == nil, err
	}
	return m, false, fmt.Errorf("%w: %s", ErrUnexpected, ans.Kind)
}

// Suspend stops the queue from accepting messages (OFF).
func (c *Client) Suspend(ctx context.Context, s Subscription) error {
	ans, err := c.recipient(ctx, s, wire.Command{Kind: wire.CmdOFF})
	return expect(ans, err, wire.AnsOK)
}

// Delete deletes the queue and its messages (DEL) and forgets it.
func (c *Client) Delete(ctx context.Context, s Subscription) error {
	ans, err := c.recipient(ctx, s, wire.Command{Kind: wire.CmdDEL})
	if err = expect(ans, err, wire.AnsOK); err == nil {
		c.Unsubscribe(s.RcvID)
	}
	return err
}

// Ping checks the connection end to end (PING → PONG).
func (c *Client) Ping(ctx context.Context) error {
	ans, err := c.do(ctx, &request{t: wire.Transmission{Command: wire.Command{Kind: wire.CmdPING}}})
	return expect(ans, err, wire.AnsPONG)
}

// conn is one connected, handshaken WebSocket.
type conn struct {
	ws   WebSocket
	sess *wire.Session

	mu      sync.Mutex
	pending map[uint64]*request
	next    uint64
	dead    error
	queue   []*request
	wake    chan struct{}
	pong    chan struct{}
	opts    *Options
}

func (c *Client) connect(ctx context.Context) (*conn, error) {
	ws, sess, err := dialSession(ctx, &c.opts, c.addr.WebSocketURL(), c.addr.KeyHash, wire.BlockSize)
	if err != nil {
		return nil, err
	}
	return &conn{ws: ws, sess: sess, pending: make(map[uint64]*request), wake: make(chan struct{}, 1), pong: make(chan struct{}, 1), opts: &c.opts}, nil
}

// dialSession dials a relay endpoint and runs the handshake within
// timeout; readLimit is the largest message the endpoint sends.
func dialSession(ctx context.Context, opts *Options, url string, kh wire.KeyHash, readLimit int64) (WebSocket, *wire.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	dial := dialWebSocket
	if opts.Dial != nil {
		dial = opts.Dial
	}
	ws, err := dial(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("client: dial: %w", err)
	}
	ws.SetReadLimit(readLimit)
	sess, err := handshake(ctx, ws, kh)
	if err != nil {
		_ = ws.Close(closePolicy, "handshake failed")
		return nil, nil, err
	}
	return ws, sess, nil
}

func handshake(ctx context.Context, ws WebSocket, kh wire.KeyHash) (*wire.Session, error) {
	hs, hello, err := wire.NewClientHandshake(kh)
	if err != nil {
		return nil, err
	}
	if err := ws.Write(ctx, hello); err != nil {
		return nil, fmt.Errorf("client: handshake: %w", err)
	}
	_, b, err := wire.ReadBlock(ctx, ws)
	if err != nil {
		return nil, fmt.Errorf("client: handshake: %w", err)
	}
	sess, confirm, err := hs.Finish(b, wire.SupportedVersions())
	if err != nil {
		return nil, err
	}
	if err := ws.Write(ctx, confirm); err != nil {
		return nil, fmt.Errorf("client: handshake: %w", err)
	}
	return sess, nil
}

func (cn *conn) enqueue(rs ...*request) {
	cn.mu.Lock()
	if cn.dead != nil {
		cn.mu.Unlock()
		for _, r := range rs {
			r.resp <- result{err: fmt.Errorf("%w: %w", ErrConnectionLost, cn.dead)}
		}
		return
	}
	cn.queue = append(cn.queue, rs...)
	cn.mu.Unlock()
	select {
	case cn.wake <- struct{}{}:
	default:
	}
}

func (cn *conn) fail(err error) {
	cn.mu.Lock()
	if cn.dead != nil {
		cn.mu.Unlock()
		return
	}
	cn.dead = err
	rs := cn.queue
	for _, r := range cn.pending {
		rs = append(rs, r)
	}
	cn.queue, cn.pending = nil, nil
	cn.mu.Unlock()
	for _, r := range rs {
		r.resp <- result{err: fmt.Errorf("%w: %w", ErrConnectionLost, err)}
	}
	_ = cn.ws.CloseNow()
}

// serve runs the connection until it fails; it returns why, and only
// after its reader, writer and keepalive goroutines are done: the reader
// emits events, so it must be gone before run closes the Events channel.
func (cn *conn) serve(c *Client) error {
	ctx, cancel := context.WithCancel(c.ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel and fail (which closes the socket) unblock them
	defer cancel()
	errc := make(chan error, 3)
	wg.Go(func() { errc <- cn.readLoop(ctx, c) })
	wg.Go(func() { errc <- cn.writeLoop(ctx) })
	wg.Go(func() { errc <- cn.keepalive(ctx) })
	for {
		select {
		case r := <-c.reqs:
			cn.enqueue(r)
		case err := <-errc:
			cn.fail(err)
			return err
		case <-c.ctx.Done():
			cn.fail(ErrClosed)
			_ = cn.ws.Close(closeNormal, "")
			return ErrClosed
		}
	}
}

func (cn *conn) writeLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cn.wake:
		}
		cn.mu.Lock()
		if cn.dead != nil {
			cn.mu.Unlock()
			return cn.dead
		}
		batch := cn.queue
		cn.queue = nil
		raws := make([][]byte, 0, len(batch))
		for _, r := range batch {
			cn.next++
			corr := make([]byte, 8)
			binary.BigEndian.PutUint64(corr, cn.next)
			r.t.CorrID = corr
			var raw []byte
			var err error
			if r.key != nil {
				raw, err = r.t.Sign(cn.sess.ID, r.key)
			} else {
				raw, err = r.t.Marshal()
			}
			if err != nil {
				r.resp <- result{err: err}
				continue
			}
			cn.pending[cn.next] = r
			raws = append(raws, raw)
		}
		cn.mu.Unlock()
		blocks, err := cn.sess.SealBatch(raws)
		if err != nil {
			return err
		}
		for _, block := range blocks {
			if err := cn.ws.Write(ctx, block); err != nil {
				return fmt.Errorf("client: write: %w", err)
			}
		}
	}
}

func (cn *conn) readLoop(ctx context.Context, c *Client) error {
	for {
		_, b, err := wire.ReadBlock(ctx, cn.ws)
		if errors.Is(err, errText) {
			return fmt.Errorf("%w: text frame", wire.ErrBlock)
		}
		if err != nil {
			return fmt.Errorf("client: read: %w", err)
		}
		payload, err := cn.sess.Open(b)
		if err != nil {
			return err
		}
		ts, err := wire.SplitBlock(payload)
		if err != nil {
			return err
		}
		select {
		case cn.pong <- struct{}{}:
		default:
		}
		for _, raw := range ts {
			t, err := wire.ParseTransmission(raw)
			if err != nil {
				return err
			}
			if len(t.CorrID) == 0 {
				c.push(&t)
				continue
			}
			if len(t.CorrID) != 8 {
				continue
			}
			id := binary.BigEndian.Uint64(t.CorrID)
			cn.mu.Lock()
			r := cn.pending[id]
			delete(cn.pending, id)
			cn.mu.Unlock()
			if r != nil {
				cmd := t.Command
				cmd.Body = append([]byte(nil), cmd.Body...)
				r.resp <- result{cmd: cmd}
			}
		}
	}
}

func (c *Client) push(t *wire.Transmission) {
	if len(t.EntityID) != wire.IDSize {
		return
	}
	rcv := wire.QueueID(t.EntityID)
	switch t.Command.Kind {
	case wire.AnsEND:
		// Another session holds the queue now: do not take it back on
		// the next reconnection.
		c.Unsubscribe(rcv)
		c.emit(Event{Kind: EventEnd, RcvID: rcv})
	case wire.AnsMSG:
		c.mu.Lock()
		s, ok := c.subs[rcv]
		c.mu.Unlock()
		if !ok {
			return
		}
		m, err := wire.OpenMessage(s.BoxKey, t.Command.MsgID, t.Command.Body)
		if err != nil {
			c.emit(Event{Kind: EventMessage, RcvID: rcv, Err: err, Message: wire.Message{ID: t.Command.MsgID}})
			return
		}
		c.emit(Event{Kind: EventMessage, RcvID: rcv, Message: m})
	}
}

// keepalive sends an app PING after PingInterval and drops the connection
// when nothing arrives within PingTimeout: the browser cannot send
// WebSocket pings, so this is how the client notices a half-open link.
func (cn *conn) keepalive(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cn.pong:
			continue
		case <-time.After(cn.opts.PingInterval):
		}
		cn.enqueue(&request{t: wire.Transmission{Command: wire.Command{Kind: wire.CmdPING}}, resp: make(chan result, 1)})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cn.pong:
		case <-time.After(cn.opts.PingTimeout):
			return fmt.Errorf("client: no answer to PING")
		}
	}
}
