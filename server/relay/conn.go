package relay

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/relay/internal/handshake"
	"github.com/wisp-chat/wisp/server/relay/internal/routes"
	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/wire"
)

// subscription is the delivery state of one subscribed queue. mu
// serialises everything that changes what is in flight, including the
// store read or ACK that decides it.
type subscription struct {
	c      *conn
	key    store.QueueKey
	rcvID  wire.QueueID
	boxKey [32]byte
	// epoch orders subscriptions across the processes of a shared store
	// (store.Shared); set before the subscription is published.
	epoch uint64

	mu       sync.Mutex
	inflight wire.MsgID
	busy     bool // a message is in flight
	ended    bool

	deferred bool // waiting in c.deferred for output room; guarded by c.outMu
}

type conn struct {
	s    *Server
	ws   *websocket.Conn
	sess *wire.Session
	addr netip.Prefix // the source, for the NEW budget; memory only

	ctx     context.Context // the server's; set before the first push
	closing chan struct{}   // closed when the session starts to end
	closed  chan struct{}   // closed when the WebSocket close (or abort) returned
	once    sync.Once

	slots chan struct{}
	// paused is set while the read loop waits for a command slot or
	// output room instead of reading, and pauses counts those waits: a
	// pong cannot be read then, so a ping that times out meanwhile says
	// nothing about the peer (sendPing).
	paused atomic.Bool
	pauses atomic.Uint64
	wg     sync.WaitGroup
	// drainMu orders starting a command (wg.Go) before a shutdown's
	// wg.Wait: once draining is set, no command starts.
	drainMu  sync.Mutex
	draining bool

	// The output: what waits for the writer, counted in bytes together
	// with the room reserved for GET answers in progress.
	outMu    sync.Mutex
	out      []outItem
	outBytes int
	writing  bool            // a flush goroutine owns the write side
	room     chan struct{}   // closed (and replaced) when bytes are written
	deferred []*subscription // MSG pushes waiting for room, oldest first

	// Per-entity order: the last command of each entity ID in progress.
	seqMu sync.Mutex
	tails map[string]chan struct{}

	mu       sync.Mutex
	ping     *time.Timer // set under mu before it can fire
	subs     map[store.QueueKey]*subscription
	gets     map[store.QueueKey]wire.MsgID // taken by GET, not acknowledged
	newTimes []time.Time

	// Private routing (proxy.go, forward.go).
	holdsQueue atomic.Bool         // proved a recipient key or created a queue: may use the proxy
	proxyOK    atomic.Bool         // gave the relay password in PRXY
	prxyRate   bucket              // PRXY per minute; guarded by mu
	pfwdRate   bucket              // PFWD per minute; guarded by mu
	fwd        *routes.Destination // this session's forward key as a destination; guarded by mu
}

func newConn(s *Server, ws *websocket.Conn, addr netip.Prefix) *conn {
	return &conn{
		s: s, ws: ws, addr: addr,
		closing: make(chan struct{}),
		closed:  make(chan struct{}),
		slots:   make(chan struct{}, maxConcurrentCommands),
		room:    make(chan struct{}),
		tails:   make(map[string]chan struct{}),
		subs:    make(map[store.QueueKey]*subscription),
		gets:    make(map[store.QueueKey]wire.MsgID),
	}
}

func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.once.Do(func() {
		close(c.closing)
		go func() {
			_ = c.ws.Close(code, reason)
			close(c.closed)
		}()
	})
}

// abort drops the connection without a close handshake: for peers that
// no longer answer or read.
func (c *conn) abort(reason string) {
	c.once.Do(func() {
		c.s.cfg.Metrics.closedFor(reason)
		close(c.closing)
		_ = c.ws.CloseNow()
		close(c.closed)
	})
}

// fatal closes the connection for a protocol violation in what it read:
// the commands already read finish and their answers are written first
// (for at most WriteTimeout), then the close frame says why.
func (c *conn) fatal(code websocket.StatusCode, reason string) {
	c.s.cfg.Metrics.closedFor(reason)
	c.finish(code, reason)
}

// finish ends the session: no further command starts, the ones in
// progress finish and their answers are written (for at most
// WriteTimeout), then the close frame says why. A client thus gets the
// answer of every command that took effect. c.closed tells when the
// close frame is out.
func (c *conn) finish(code websocket.StatusCode, reason string) {
	c.drainMu.Lock()
	c.draining = true
	c.drainMu.Unlock()
	c.wg.Wait()
	c.waitFlushed(c.s.cfg.Limits.WriteTimeout)
	c.closeWith(code, reason)
}

// read returns the next binary block. A block of the wrong kind or size
// closes the connection with its reason after the commands already read
// are answered; a read error (the client went away) closes it at once.
func (c *conn) read(ctx context.Context) ([]byte, bool) {
	return handshake.ReadBlock(ctx, c.ws, func(code websocket.StatusCode, reason string) {
		if reason == "read failed" {
			c.closeWith(code, reason)
			return
		}
		c.fatal(code, reason)
	})
}

func (c *conn) serve(ctx context.Context) {
	defer c.cleanup()
	lim := c.s.cfg.Limits
	hctx, cancel := context.WithTimeout(ctx, lim.HandshakeTimeout)
	if !c.handshake(hctx) {
		cancel()
		return
	}
	cancel()
	// No goroutine waits on an idle connection's write side: flush runs
	// only while answers are queued, and the ping timer fires on its own.
	c.ctx = ctx
	c.mu.Lock()
	c.ping = time.AfterFunc(lim.PingInterval, c.sendPing)
	c.mu.Unlock()
	defer c.ping.Stop()
	for {
		// Backpressure: no more input while the output is full.
		if !c.waitRoomReading(0) {
			return
		}
		b, ok := c.read(ctx)
		if !ok {
			return
		}
		payload, err := c.sess.Open(b)
		if err != nil {
			c.fatal(websocket.StatusPolicyViolation, "block authentication failed")
			return
		}
		ts, err := wire.SplitBlock(payload)
		if err != nil {
			c.fatal(websocket.StatusPolicyViolation, "malformed block")
			return
		}
		for _, raw := range ts {
			if !c.dispatch(raw) {
				// A shutdown drains the session and closes it itself.
				<-c.closing
				return
			}
		}
	}
}

// pause runs wait, a wait of the read loop, marked as a pause.
func (c *conn) pause(wait func() bool) bool {
	c.paused.Store(true)
	c.pauses.Add(1)
	defer c.paused.Store(false)
	return wait()
}

// maxConcurrentCommands bounds the commands of one connection in progress.
const maxConcurrentCommands = 256

// command is one transmission being handled.
type command struct {
	t wire.Transmission
	// reserved is output room held for a MSG answer (GET only).
	reserved int
	// release lets the next command on the same entity ID start; it is
	// called once the command's effect has its place in the store's
	// order, or when the command ends.
	release func()
}

// dispatch parses one transmission and starts its command. Commands run
// concurrently (up to maxConcurrentCommands per connection) so that a
// connection's SENDs and ACKs share group commits, except that commands
// on the same entity ID start in the order they arrived and each waits
// until the one before it has taken its place in the store's order: a
// client may pipeline SENDs to one queue and they are stored in order.
func (c *conn) dispatch(raw []byte) bool {
	cmd := &command{}
	var err error
	cmd.t, err = wire.ParseTransmission(raw)
	if err != nil {
		c.parseFailed(&cmd.t, err)
		return true
	}
	if cmd.t.Command.Kind == wire.CmdGET {
		// A GET may answer with a whole MSG: it starts only when the
		// output has room for it.
		if !c.waitRoomReading(msgCost) {
			return false
		}
		cmd.reserved = msgCost
	}
	select {
	case c.slots <- struct{}{}:
	default:
		// Every slot waits (on the store, most likely): the read loop
		// waits with them.
		ok := c.pause(func() bool {
			select {
			case c.slots <- struct{}{}:
				return true
			case <-c.closing:
				return false
			}
		})
		if !ok {
			c.unreserve(cmd.reserved)
			return false
		}
	}
	c.drainMu.Lock()
	defer c.drainMu.Unlock()
	if c.draining {
		<-c.slots
		c.unreserve(cmd.reserved)
		return false
	}
	// Forwarded commands have no order among themselves (SPEC §12.4):
	// PFWDs on one route do not wait for each other.
	var prev <-chan struct{}
	release := func() {}
	if cmd.t.Command.Kind != wire.CmdPFWD {
		prev, release = c.sequence(cmd.t.EntityID)
	}
	cmd.release = release
	c.wg.Go(func() {
		defer func() { <-c.slots }()
		defer release()
		defer c.recoverCommand(cmd)
		if prev != nil {
			select {
			case <-prev:
			case <-c.closing:
				c.unreserve(cmd.reserved)
				return
			}
		}
		c.handle(cmd)
	})
	return true
}

// sequence chains a command after the previous one in progress on the
// same entity ID. release is idempotent.
func (c *conn) sequence(entity []byte) (prev <-chan struct{}, release func()) {
	if len(entity) == 0 {
		return nil, func() {}
	}
	key := string(entity)
	done := make(chan struct{})
	c.seqMu.Lock()
	prev = c.tails[key]
	c.tails[key] = done
	c.seqMu.Unlock()
	var once sync.Once
	return prev, func() {
		once.Do(func() {
			close(done)
			c.seqMu.Lock()
			if c.tails[key] == done {
				delete(c.tails, key)
			}
			c.seqMu.Unlock()
		})
	}
}

// recoverCommand turns a panic while handling a command into ERR
// INTERNAL for that command: the connection and the process go on.
func (c *conn) recoverCommand(cmd *command) {
	r := recover()
	if r == nil {
		return
	}
	c.s.log.Error("command failed with a panic", "kind", cmd.t.Command.Kind.String(), "panic", fmt.Sprint(r))
	c.unreserve(cmd.reserved)
	cmd.reserved = 0
	c.fail(&cmd.t, wire.CodeInternal)
}

// handshake runs the session handshake (package handshake) and keeps
// the session.
func (c *conn) handshake(ctx context.Context) bool {
	sess, ok := handshake.Relay{
		Identity: c.s.cfg.Identity,
		Read:     c.read,
		Write:    func(ctx context.Context, b []byte) error { return c.ws.Write(ctx, websocket.MessageBinary, b) },
		Close: func(code websocket.StatusCode, reason string) {
			if code == websocket.StatusPolicyViolation {
				c.s.cfg.Metrics.closedFor(reason)
			}
			c.closeWith(code, reason)
		},
	}.Run(ctx)
	c.sess = sess
	return ok
}

func (c *conn) cleanup() {
	c.closeWith(websocket.StatusNormalClosure, "")
	c.wg.Wait()
	c.mu.Lock()
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	c.s.mu.Lock()
	for k, sub := range subs {
		if c.s.subs[k] == sub {
			delete(c.s.subs, k)
		}
	}
	c.s.mu.Unlock()
	for _, sub := range subs {
		sub.mu.Lock()
		sub.ended = true
		sub.mu.Unlock()
	}
}

// sendPing sends a WebSocket ping; coder/websocket matches the pong in the
// read loop. A peer that stays silent is half-open and is dropped.
func (c *conn) sendPing() {
	select {
	case <-c.closing:
		return
	default:
	}
	// A pong is read only by the read loop: while it waits for the
	// store or for output room, a ping cannot be answered, and the peer
	// is not the one to blame. A peer that stops reading is dropped by
	// the write timeout instead.
	before := c.pauses.Load()
	if !c.paused.Load() {
		pctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.Limits.PingTimeout)
		err := c.ws.Ping(pctx)
		cancel()
		if err != nil && !c.paused.Load() && c.pauses.Load() == before {
			c.abort("ping timeout")
			return
		}
	}
	c.mu.Lock()
	c.ping.Reset(c.s.cfg.Limits.PingInterval)
	c.mu.Unlock()
}

func (c *conn) answer(t *wire.Transmission, cmd wire.Command) {
	if cmd.Kind == wire.AnsERR {
		c.s.cfg.Metrics.errored(cmd.Code)
	}
	c.push(&wire.Transmission{CorrID: t.CorrID, EntityID: t.EntityID, Command: cmd}, 0)
}

func (c *conn) fail(t *wire.Transmission, code wire.ErrCode) {
	c.answer(t, wire.Command{Kind: wire.AnsERR, Code: code})
}

// parseFailed answers a transmission that did not parse.
func (c *conn) parseFailed(t *wire.Transmission, err error) {
	switch {
	case errors.Is(err, wire.ErrTooLarge):
		c.fail(t, wire.CodeLarge)
	case errors.Is(err, wire.ErrCommand):
		c.fail(t, wire.CodeCmd)
	default:
		// The framing is broken, so the IDs cannot be trusted: answer
		// with empty ones.
		c.fail(&wire.Transmission{}, wire.CodeBlock)
	}
}

func (c *conn) handle(cmd *command) {
	t := &cmd.t
	kind := t.Command.Kind
	switch kind {
	case wire.CmdPRXY, wire.CmdPFWD:
		c.proxyCommand(t)
		return
	case wire.CmdRKEY, wire.CmdRFWD:
		c.destinationCommand(t)
		return
	}
	isPing := kind == wire.CmdPING
	needEntity := kind != wire.CmdNEW && !isPing
	// PING is the one command without a signature; every other one must
	// be signed (a missing signature is CMD on both endpoints).
	if !kind.FromClient() || needEntity != (len(t.EntityID) == wire.IDSize) ||
		isPing != (t.Signature == nil) || len(t.CorrID) == 0 {
		c.unreserve(cmd.reserved)
		c.fail(t, wire.CodeCmd)
		return
	}
	switch kind {
	case wire.CmdPING:
		c.answer(t, wire.Command{Kind: wire.AnsPONG})
	case wire.CmdNEW:
		c.newQueue(t)
	case wire.CmdSKEY, wire.CmdSEND:
		c.senderCommand(cmd)
	default:
		c.recipientCommand(cmd)
	}
}

func (c *conn) allowNew() bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := c.newTimes[:0]
	for _, ts := range c.newTimes {
		if now.Sub(ts) < time.Minute {
			keep = append(keep, ts)
		}
	}
	c.newTimes = keep
	if len(keep) >= c.s.cfg.Limits.NewPerMinute {
		return false
	}
	if !c.s.newBudget.allow(c.addr, now) {
		return false
	}
	c.newTimes = append(c.newTimes, now)
	return true
}

func (c *conn) newQueue(t *wire.Transmission) {
	cmd := &t.Command
	// A password in NEW to a relay without one is ignored.
	pwOK := true
	if len(c.s.cfg.Password) > 0 {
		pw := sha256.Sum256(cmd.Password)
		pwOK = subtle.ConstantTimeCompare(pw[:], c.s.pwHash[:]) == 1
	}
	if !c.s.verify(t, c.sess.ID, cmd.AuthKey[:]) || !pwOK {
		c.fail(t, wire.CodeAuth)
		return
	}
	dh, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		c.fail(t, wire.CodeInternal)
		return
	}
	// A low-order recipient key (all-zero shared secret) would give a
	// box key anyone can compute.
	peer, err := ecdh.X25519().NewPublicKey(cmd.DHKey[:])
	if err == nil {
		_, err = dh.ECDH(peer)
	}
	if err != nil {
		c.fail(t, wire.CodeCmd)
		return
	}
	if !c.allowNew() {
		c.fail(t, wire.CodeLimit)
		return
	}
	var ids struct{ rcv, snd wire.QueueID }
	_, _ = rand.Read(ids.rcv[:])
	_, _ = rand.Read(ids.snd[:])
	var pub, priv [32]byte
	copy(pub[:], dh.PublicKey().Bytes())
	copy(priv[:], dh.Bytes())
	q := store.Queue{RcvAuthKey: cmd.AuthKey, BoxKey: *wire.BoxKey(&cmd.DHKey, &priv), Created: time.Now()}
	clear(priv[:])
	if err := c.s.cfg.Store.Create(store.RecipientKey(ids.rcv), store.SenderKeyOf(ids.snd), q); err != nil {
		c.storeFailed(t, err)
		return
	}
	c.s.cfg.Metrics.created()
	c.holdsQueue.Store(true)
	c.answer(t, wire.Command{Kind: wire.AnsIDS, RcvID: ids.rcv, SndID: ids.snd, DHKey: pub})
}

func (c *conn) senderCommand(cmd *command) {
	t := &cmd.t
	c.sender(t, c.sess.ID, cmd.release, func(a wire.Command) { c.answer(t, a) })
}

// sender runs SKEY or SEND, signed over sessID (the session's ID, or a
// forwarded command's own), and answers with reply. queued is called once
// a SEND has its place in the queue's order.
func (c *conn) sender(t *wire.Transmission, sessID [32]byte, queued func(), reply func(wire.Command)) {
	fail := func(code wire.ErrCode) { reply(wire.Command{Kind: wire.AnsERR, Code: code}) }
	k, q, err := c.s.cfg.Store.BySender(store.SenderKeyOf(wire.QueueID(t.EntityID)))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		fail(c.storeCode(err))
		return
	}
	found := err == nil
	// Every path verifies once against a valid key: the queue's, the one
	// in SKEY, or the dummy when the queue is missing or not secured.
	key := c.s.dummyKey[:]
	switch {
	case t.Command.Kind == wire.CmdSKEY:
		key = t.Command.AuthKey[:]
	case found && q.Secured:
		key = q.SndAuthKey[:]
	}
	ok := c.s.verify(t, sessID, key)
	if !found || !ok || q.Suspended || (t.Command.Kind == wire.CmdSEND && !q.Secured) {
		fail(wire.CodeAuth)
		return
	}
	if t.Command.Kind == wire.CmdSKEY {
		if err := c.s.cfg.Store.Secure(k, t.Command.AuthKey); err != nil {
			fail(c.storeCode(err))
			return
		}
		reply(wire.Command{Kind: wire.AnsOK})
		return
	}
	m := store.Message{Time: time.Now(), Body: t.Command.Body}
	_, _ = rand.Read(m.ID[:])
	if err := c.s.cfg.Store.PutQueued(k, m, c.s.cfg.Limits.QueueQuota, queued); err != nil {
		if errors.Is(err, store.ErrQuota) {
			c.s.deliverIfIdle(k)
		}
		fail(c.storeCode(err))
		return
	}
	c.s.cfg.Metrics.sent()
	reply(wire.Command{Kind: wire.AnsOK})
	c.s.deliverIfIdle(k)
}

// storeFailed answers a store error: missing, suspended and conflicting
// queues are AUTH; quota is QUOTA; anything else is INTERNAL.
func (c *conn) storeFailed(t *wire.Transmission, err error) {
	c.fail(t, c.storeCode(err))
}

// storeCode is the error code of a store error; it logs the unexpected ones.
func (c *conn) storeCode(err error) wire.ErrCode {
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrSuspended), errors.Is(err, store.ErrSecured):
		return wire.CodeAuth
	case errors.Is(err, store.ErrQuota):
		return wire.CodeQuota
	case errors.Is(err, store.ErrFull):
		return wire.CodeFull
	case errors.Is(err, store.ErrNoMsg):
		return wire.CodeNoMsg
	default:
		c.s.log.Error("store operation failed", "err", err)
		return wire.CodeInternal
	}
}

func (c *conn) recipientCommand(cmd *command) {
	t := &cmd.t
	rcvID := wire.QueueID(t.EntityID)
	k := store.RecipientKey(rcvID)
	q, err := c.s.cfg.Store.Get(k)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.unreserve(cmd.reserved)
		c.storeFailed(t, err)
		return
	}
	key := c.s.dummyKey[:]
	if err == nil {
		key = q.RcvAuthKey[:]
	}
	if ok := c.s.verify(t, c.sess.ID, key); !ok || err != nil {
		c.unreserve(cmd.reserved)
		c.fail(t, wire.CodeAuth)
		return
	}
	c.holdsQueue.Store(true)
	switch t.Command.Kind {
	case wire.CmdSUB:
		c.subscribe(t, k, rcvID, q.BoxKey)
	case wire.CmdACK:
		c.ack(t, k)
	case wire.CmdGET:
		c.get(cmd, k, q.BoxKey)
	case wire.CmdOFF:
		if err := c.s.cfg.Store.Suspend(k); err != nil {
			c.storeFailed(t, err)
			return
		}
		c.answer(t, wire.Command{Kind: wire.AnsOK})
	case wire.CmdDEL:
		if err := c.s.cfg.Store.Delete(k); err != nil {
			c.storeFailed(t, err)
			return
		}
		c.mu.Lock()
		delete(c.gets, k)
		c.mu.Unlock()
		c.s.unsubscribe(k, c)
		c.answer(t, wire.Command{Kind: wire.AnsOK})
	}
}

func (c *conn) subscribe(t *wire.Transmission, k store.QueueKey, rcvID wire.QueueID, boxKey [32]byte) {
	// The limit check and the insert happen under one lock, so SUBs in
	// one block cannot overshoot it.
	c.mu.Lock()
	if c.subs == nil {
		c.mu.Unlock()
		return
	}
	sub := c.subs[k]
	fresh := sub == nil
	if fresh {
		if len(c.subs) >= c.s.cfg.Limits.MaxSubsPerConn {
			c.mu.Unlock()
			c.fail(t, wire.CodeLimit)
			return
		}
		sub = &subscription{c: c, key: k, rcvID: rcvID, boxKey: boxKey}
		c.subs[k] = sub
	}
	c.mu.Unlock()
	// A repeated SUB on the same session changes nothing: WebSocket
	// delivery is reliable, so what is in flight stays in flight.
	if fresh {
		if c.s.shared != nil {
			epoch, err := c.s.shared.Subscribe(k)
			if err != nil {
				c.mu.Lock()
				if c.subs != nil && c.subs[k] == sub {
					delete(c.subs, k)
				}
				c.mu.Unlock()
				c.storeFailed(t, err)
				return
			}
			sub.epoch = epoch
		}
		c.s.mu.Lock()
		old := c.s.subs[k]
		c.s.subs[k] = sub
		c.s.mu.Unlock()
		if old != nil {
			old.end(k)
		}
	}
	c.answer(t, wire.Command{Kind: wire.AnsOK})
	if fresh && c.s.shared != nil {
		// Another process may have subscribed after this one's epoch was
		// taken, and its event come before this subscription was in
		// s.subs: then this one is already stale.
		if e, err := c.s.shared.Epoch(k); err != nil || e > sub.epoch {
			c.s.endShared(k, sub)
			return
		}
	}
	c.s.deliverIfIdle(k)
}

// end tells the old session that another took its subscription.
func (sub *subscription) end(k store.QueueKey) {
	sub.mu.Lock()
	sub.ended = true
	sub.mu.Unlock()
	c := sub.c
	c.mu.Lock()
	if c.subs != nil && c.subs[k] == sub {
		delete(c.subs, k)
	}
	c.mu.Unlock()
	c.push(&wire.Transmission{EntityID: sub.rcvID[:], Command: wire.Command{Kind: wire.AnsEND}}, 0)
}

func (s *Server) unsubscribe(k store.QueueKey, by *conn) {
	s.mu.Lock()
	sub := s.subs[k]
	delete(s.subs, k)
	s.mu.Unlock()
	if sub == nil {
		return
	}
	if sub.c != by {
		sub.end(k)
		return
	}
	sub.mu.Lock()
	sub.ended = true
	sub.mu.Unlock()
	by.mu.Lock()
	if by.subs != nil {
		delete(by.subs, k)
	}
	by.mu.Unlock()
}

func (s *Server) subscriber(k store.QueueKey) *subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs[k]
}

// deliverIfIdle pushes the oldest message of k to its subscriber if
// nothing is in flight.
func (s *Server) deliverIfIdle(k store.QueueKey) {
	sub := s.subscriber(k)
	if sub == nil {
		return
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.ended || sub.busy {
		return
	}
	if !sub.c.reserveOrDefer(sub) {
		return
	}
	m, ok, err := s.cfg.Store.Peek(k)
	if err != nil || !ok {
		sub.c.unreserve(msgCost)
		if err != nil {
			s.log.Error("reading queue failed", "err", err)
		}
		return
	}
	sub.deliverLocked(&m)
}

// deliverLocked pushes m, for which msgCost of room is reserved.
func (sub *subscription) deliverLocked(m *store.Message) {
	sealed := sealStored(sub.c.s, &sub.boxKey, m)
	if sealed == nil {
		sub.c.unreserve(msgCost)
		return
	}
	sub.busy, sub.inflight = true, m.ID
	sub.c.s.cfg.Metrics.delivered()
	sub.c.push(&wire.Transmission{EntityID: sub.rcvID[:], Command: wire.Command{Kind: wire.AnsMSG, MsgID: m.ID, Body: sealed}}, msgCost)
}

// sealStored seals a stored message for its recipient, or returns nil
// for a body longer than any SEND can store (a corrupt store record),
// which is logged and never delivered.
func sealStored(s *Server, boxKey *[32]byte, m *store.Message) []byte {
	sealed := wire.SealMessage(boxKey, m.ID, m.Time, m.Quota, m.Body)
	if sealed == nil {
		s.log.Error("stored message longer than a SEND body: corrupt store? run wisp-relay -check")
	}
	return sealed
}

// ack acknowledges a message this session received: the one in flight
// to it as the subscriber, or the one it took with GET. Any other ID is
// NO_MSG, so a session cannot delete what another session has in flight
// without having received it.
func (c *conn) ack(t *wire.Transmission, k store.QueueKey) {
	id := t.Command.MsgID
	c.mu.Lock()
	got, gotOK := c.gets[k]
	if gotOK && got == id {
		delete(c.gets, k)
	}
	c.mu.Unlock()
	tookByGet := gotOK && got == id
	sub := c.s.subscriber(k)
	if sub != nil && sub.c == c {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		if !sub.busy || sub.inflight != id {
			if tookByGet {
				c.ackTaken(t, k, nil)
				return
			}
			c.fail(t, wire.CodeNoMsg)
			return
		}
		next, ok, err := c.s.cfg.Store.Ack(k, id)
		if errors.Is(err, store.ErrNoMsg) {
			// Expired or acknowledged through GET meanwhile: nothing to keep.
			next, ok, err = c.s.cfg.Store.Peek(k)
		}
		if err != nil {
			c.storeFailed(t, err)
			return
		}
		sub.busy = false
		c.answer(t, wire.Command{Kind: wire.AnsOK})
		if ok && !sub.ended {
			if c.reserveOrDefer(sub) {
				sub.deliverLocked(&next)
			}
		}
		return
	}
	if !tookByGet {
		c.fail(t, wire.CodeNoMsg)
		return
	}
	c.ackTaken(t, k, sub)
}

// ackTaken acknowledges a message taken by GET, then unblocks a
// subscriber (in another session) that had it in flight.
func (c *conn) ackTaken(t *wire.Transmission, k store.QueueKey, sub *subscription) {
	id := t.Command.MsgID
	if _, _, err := c.s.cfg.Store.Ack(k, id); err != nil {
		c.storeFailed(t, err)
		return
	}
	c.answer(t, wire.Command{Kind: wire.AnsOK})
	if sub == nil {
		return
	}
	sub.mu.Lock()
	if sub.busy && sub.inflight == id {
		sub.busy = false
	}
	sub.mu.Unlock()
	c.s.deliverIfIdle(k)
}

// get answers GET with the oldest message, using the room the read loop
// reserved for it. The same message is not sent twice to one session: a
// GET while the message it would return was taken by this session's
// earlier GET and not acknowledged is PROHIBITED.
func (c *conn) get(cmd *command, k store.QueueKey, boxKey [32]byte) {
	t := &cmd.t
	reserved := cmd.reserved
	cmd.reserved = 0
	if sub := c.s.subscriber(k); sub != nil && sub.c == c {
		c.unreserve(reserved)
		c.fail(t, wire.CodeProhibited)
		return
	}
	m, ok, err := c.s.cfg.Store.Peek(k)
	if err != nil || !ok {
		c.unreserve(reserved)
		if err != nil {
			c.storeFailed(t, err)
		} else {
			c.answer(t, wire.Command{Kind: wire.AnsOK})
		}
		return
	}
	// Checked and recorded under one lock, so GETs on different queues
	// cannot overshoot the limit together.
	c.mu.Lock()
	got, had := c.gets[k]
	code := wire.ErrCode(0)
	switch {
	case had && got == m.ID:
		code = wire.CodeProhibited
	case !had && len(c.gets) >= c.s.cfg.Limits.MaxSubsPerConn:
		code = wire.CodeLimit
	default:
		c.gets[k] = m.ID
	}
	c.mu.Unlock()
	var sealed []byte
	if code == 0 {
		if sealed = sealStored(c.s, &boxKey, &m); sealed == nil {
			code = wire.CodeInternal
			c.mu.Lock()
			delete(c.gets, k)
			c.mu.Unlock()
		}
	}
	if code != 0 {
		c.unreserve(reserved)
		c.fail(t, code)
		return
	}
	c.s.cfg.Metrics.delivered()
	c.push(&wire.Transmission{CorrID: t.CorrID, EntityID: t.EntityID, Command: wire.Command{Kind: wire.AnsMSG, MsgID: m.ID, Body: sealed}}, reserved)
}
