package relay

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/relay/internal/handshake"
	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/wire"
)

// subscription is the delivery state of one subscribed queue. mu
// serialises everything that changes what is in flight, including the
// store read or ACK that decides it.
type subscription struct {
	c      *conn
	rcvID  wire.QueueID
	boxKey [32]byte

	mu       sync.Mutex
	inflight wire.MsgID
	busy     bool // a message is in flight
	ended    bool
}

type conn struct {
	s    *Server
	ws   *websocket.Conn
	sess *wire.Session

	ctx     context.Context // the server's; set before the first push
	outMu   sync.Mutex
	out     [][]byte
	writing bool // a flush goroutine owns the write side
	closing chan struct{}
	once    sync.Once

	slots chan struct{}
	wg    sync.WaitGroup

	mu       sync.Mutex
	ping     *time.Timer // set under mu before it can fire
	subs     map[store.QueueKey]*subscription
	newTimes []time.Time
}

func newConn(s *Server, ws *websocket.Conn) *conn {
	return &conn{s: s, ws: ws, closing: make(chan struct{}), slots: make(chan struct{}, maxConcurrentCommands), subs: make(map[store.QueueKey]*subscription)}
}

func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.once.Do(func() {
		close(c.closing)
		go func() { _ = c.ws.Close(code, reason) }()
	})
}

// abort drops the connection without a close handshake: for peers that
// no longer answer.
func (c *conn) abort() {
	c.once.Do(func() {
		close(c.closing)
		_ = c.ws.CloseNow()
	})
}

func (c *conn) violation(code websocket.StatusCode, reason string) {
	c.s.cfg.Metrics.closedFor(reason)
	c.closeWith(code, reason)
}

// read returns the next binary block, closing the connection with a clear
// reason for text frames and blocks of the wrong size.
func (c *conn) read(ctx context.Context) ([]byte, bool) {
	typ, b, err := wire.ReadBlock(ctx, c.ws)
	if errors.Is(err, wire.ErrBlockSize) || websocket.CloseStatus(err) == websocket.StatusMessageTooBig {
		// coder/websocket enforces the read limit itself and may already
		// have sent its own close frame (status 1009).
		c.violation(websocket.StatusPolicyViolation, "block size must be 16384")
		return nil, false
	}
	if err != nil {
		c.closeWith(websocket.StatusPolicyViolation, "read failed")
		return nil, false
	}
	if typ != websocket.MessageBinary {
		c.violation(websocket.StatusUnsupportedData, "binary blocks only")
		return nil, false
	}
	if len(b) != wire.BlockSize {
		c.violation(websocket.StatusPolicyViolation, "block size must be 16384")
		return nil, false
	}
	return b, true
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
		b, ok := c.read(ctx)
		if !ok {
			return
		}
		payload, err := c.sess.Open(b)
		if err != nil {
			c.violation(websocket.StatusPolicyViolation, "block authentication failed")
			return
		}
		ts, err := wire.SplitBlock(payload)
		if err != nil {
			c.violation(websocket.StatusPolicyViolation, "malformed block")
			return
		}
		// Transmissions are processed concurrently (up to
		// maxConcurrentCommands per connection) so that a connection's
		// SENDs and ACKs share group commits instead of waiting for one
		// fsync each; answers are matched by correlation ID.
		for _, raw := range ts {
			select {
			case c.slots <- struct{}{}:
			case <-c.closing:
				return
			}
			c.wg.Go(func() {
				defer func() { <-c.slots }()
				c.handle(raw)
			})
		}
	}
}

// maxConcurrentCommands bounds the commands of one connection in progress.
const maxConcurrentCommands = 256

// handshake runs the session handshake (package handshake) and keeps
// the session.
func (c *conn) handshake(ctx context.Context) bool {
	sess, ok := handshake.Relay{
		Identity: c.s.cfg.Identity,
		Read:     c.read,
		Write:    func(ctx context.Context, b []byte) error { return c.ws.Write(ctx, websocket.MessageBinary, b) },
		Close: func(code websocket.StatusCode, reason string) {
			if code == websocket.StatusPolicyViolation {
				c.violation(code, reason) // counted in the metrics
			} else {
				c.closeWith(code, reason)
			}
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

// push queues a transmission for the writer. A client that lets more than
// MaxPending transmissions pile up is disconnected.
func (c *conn) push(t *wire.Transmission) {
	raw, err := t.Marshal()
	if err != nil {
		// Only relay-built transmissions reach here; they always encode.
		panic("relay: encoding answer: " + err.Error())
	}
	c.outMu.Lock()
	if len(c.out) >= c.s.cfg.Limits.MaxPending {
		c.outMu.Unlock()
		c.violation(websocket.StatusPolicyViolation, "client not reading")
		return
	}
	c.out = append(c.out, raw)
	start := !c.writing
	c.writing = true
	c.outMu.Unlock()
	if start {
		go c.flush()
	}
}

// flush writes queued transmissions, batched into blocks, until none are
// left. At most one flush runs per connection, so the send chain is used
// by one goroutine at a time.
func (c *conn) flush() {
	for {
		c.outMu.Lock()
		pending := c.out
		c.out = nil
		if len(pending) == 0 {
			c.writing = false
			c.outMu.Unlock()
			return
		}
		c.outMu.Unlock()
		blocks, err := c.sess.SealBatch(pending)
		for _, block := range blocks {
			if err == nil {
				err = c.ws.Write(c.ctx, websocket.MessageBinary, block)
			}
		}
		if err != nil {
			// writing stays true: nothing more is written on this conn.
			c.closeWith(websocket.StatusInternalError, "write failed")
			return
		}
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
	pctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.Limits.PingTimeout)
	defer cancel()
	if err := c.ws.Ping(pctx); err != nil {
		c.s.cfg.Metrics.closedFor("ping timeout")
		c.abort()
		return
	}
	c.mu.Lock()
	c.ping.Reset(c.s.cfg.Limits.PingInterval)
	c.mu.Unlock()
}

func (c *conn) answer(t *wire.Transmission, cmd wire.Command) {
	if cmd.Kind == wire.AnsERR {
		c.s.cfg.Metrics.errored(cmd.Code)
	}
	c.push(&wire.Transmission{CorrID: t.CorrID, EntityID: t.EntityID, Command: cmd})
}

func (c *conn) fail(t *wire.Transmission, code wire.ErrCode) {
	c.answer(t, wire.Command{Kind: wire.AnsERR, Code: code})
}

func (c *conn) handle(raw []byte) {
	t, err := wire.ParseTransmission(raw)
	switch {
	case errors.Is(err, wire.ErrTooLarge):
		c.fail(&t, wire.CodeLarge)
		return
	case errors.Is(err, wire.ErrCommand):
		c.fail(&t, wire.CodeCmd)
		return
	case err != nil:
		// The framing is broken, so the IDs cannot be trusted: answer
		// with empty ones.
		c.fail(&wire.Transmission{}, wire.CodeBlock)
		return
	}
	cmd := &t.Command
	needEntity := cmd.Kind != wire.CmdNEW && cmd.Kind != wire.CmdPING
	if !cmd.Kind.FromClient() || needEntity != (len(t.EntityID) == wire.IDSize) ||
		(cmd.Kind != wire.CmdPING && t.Signature == nil) || len(t.CorrID) == 0 {
		c.fail(&t, wire.CodeCmd)
		return
	}
	switch cmd.Kind {
	case wire.CmdPING:
		c.answer(&t, wire.Command{Kind: wire.AnsPONG})
	case wire.CmdNEW:
		c.newQueue(&t)
	case wire.CmdSKEY, wire.CmdSEND:
		c.senderCommand(&t)
	default:
		c.recipientCommand(&t)
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
	c.newTimes = append(c.newTimes, now)
	return true
}

func (c *conn) newQueue(t *wire.Transmission) {
	cmd := &t.Command
	pw := sha256.Sum256(cmd.Password)
	pwOK := subtle.ConstantTimeCompare(pw[:], c.s.pwHash[:]) == 1
	if !t.Verify(c.sess.ID, cmd.AuthKey[:]) || !pwOK {
		c.fail(t, wire.CodeAuth)
		return
	}
	if !c.allowNew() {
		c.fail(t, wire.CodeLimit)
		return
	}
	dh, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		c.fail(t, wire.CodeInternal)
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
		c.s.log.Error("creating queue failed", "err", err)
		c.fail(t, wire.CodeInternal)
		return
	}
	c.s.cfg.Metrics.created()
	c.answer(t, wire.Command{Kind: wire.AnsIDS, RcvID: ids.rcv, SndID: ids.snd, DHKey: pub})
}

func (c *conn) senderCommand(t *wire.Transmission) {
	cmd := &t.Command
	k, q, err := c.s.cfg.Store.BySender(store.SenderKeyOf(wire.QueueID(t.EntityID)))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.storeFailed(t, err)
		return
	}
	found := err == nil
	key := c.s.dummyKey[:]
	switch {
	case cmd.Kind == wire.CmdSKEY:
		key = cmd.AuthKey[:]
	case found && q.Secured:
		key = q.SndAuthKey[:]
	}
	ok := t.Verify(c.sess.ID, key)
	if !found || !ok || q.Suspended || (cmd.Kind == wire.CmdSEND && !q.Secured) {
		c.fail(t, wire.CodeAuth)
		return
	}
	if cmd.Kind == wire.CmdSKEY {
		if err := c.s.cfg.Store.Secure(k, cmd.AuthKey); err != nil {
			c.storeFailed(t, err)
			return
		}
		c.answer(t, wire.Command{Kind: wire.AnsOK})
		return
	}
	m := store.Message{Time: time.Now(), Body: cmd.Body}
	_, _ = rand.Read(m.ID[:])
	if err := c.s.cfg.Store.Put(k, m, c.s.cfg.Limits.QueueQuota); err != nil {
		if errors.Is(err, store.ErrQuota) {
			c.s.deliverIfIdle(k)
		}
		c.storeFailed(t, err)
		return
	}
	c.s.cfg.Metrics.sent()
	c.answer(t, wire.Command{Kind: wire.AnsOK})
	c.s.deliverIfIdle(k)
}

// storeFailed answers a store error: missing, suspended and conflicting
// queues are AUTH; quota is QUOTA; anything else is INTERNAL.
func (c *conn) storeFailed(t *wire.Transmission, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrSuspended), errors.Is(err, store.ErrSecured):
		c.fail(t, wire.CodeAuth)
	case errors.Is(err, store.ErrQuota):
		c.fail(t, wire.CodeQuota)
	case errors.Is(err, store.ErrNoMsg):
		c.fail(t, wire.CodeNoMsg)
	default:
		c.s.log.Error("store operation failed", "err", err)
		c.fail(t, wire.CodeInternal)
	}
}

func (c *conn) recipientCommand(t *wire.Transmission) {
	rcvID := wire.QueueID(t.EntityID)
	k := store.RecipientKey(rcvID)
	q, err := c.s.cfg.Store.Get(k)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.storeFailed(t, err)
		return
	}
	key := c.s.dummyKey[:]
	if err == nil {
		key = q.RcvAuthKey[:]
	}
	if ok := t.Verify(c.sess.ID, key); !ok || err != nil {
		c.fail(t, wire.CodeAuth)
		return
	}
	switch t.Command.Kind {
	case wire.CmdSUB:
		c.subscribe(t, k, rcvID, q.BoxKey)
	case wire.CmdACK:
		c.ack(t, k)
	case wire.CmdGET:
		c.get(t, k, q.BoxKey)
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
		c.s.unsubscribe(k, c)
		c.answer(t, wire.Command{Kind: wire.AnsOK})
	}
}

func (c *conn) subscribe(t *wire.Transmission, k store.QueueKey, rcvID wire.QueueID, boxKey [32]byte) {
	c.mu.Lock()
	if c.subs == nil {
		c.mu.Unlock()
		return
	}
	existing := c.subs[k]
	if existing == nil && len(c.subs) >= c.s.cfg.Limits.MaxSubsPerConn {
		c.mu.Unlock()
		c.fail(t, wire.CodeLimit)
		return
	}
	c.mu.Unlock()
	// A repeated SUB on the same session changes nothing: WebSocket
	// delivery is reliable, so what is in flight stays in flight.
	if existing == nil {
		sub := &subscription{c: c, rcvID: rcvID, boxKey: boxKey}
		c.s.mu.Lock()
		old := c.s.subs[k]
		c.s.subs[k] = sub
		c.s.mu.Unlock()
		c.mu.Lock()
		if c.subs != nil {
			c.subs[k] = sub
		}
		c.mu.Unlock()
		if old != nil {
			old.end(k)
		}
	}
	c.answer(t, wire.Command{Kind: wire.AnsOK})
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
	c.push(&wire.Transmission{EntityID: sub.rcvID[:], Command: wire.Command{Kind: wire.AnsEND}})
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
	m, ok, err := s.cfg.Store.Peek(k)
	if err != nil {
		s.log.Error("reading queue failed", "err", err)
		return
	}
	if ok {
		sub.deliverLocked(&m, nil)
	}
}

func (sub *subscription) deliverLocked(m *store.Message, corrID []byte) {
	sub.busy, sub.inflight = true, m.ID
	sub.c.s.cfg.Metrics.delivered()
	sealed := wire.SealMessage(&sub.boxKey, m.ID, m.Time, m.Quota, m.Body)
	sub.c.push(&wire.Transmission{CorrID: corrID, EntityID: sub.rcvID[:], Command: wire.Command{Kind: wire.AnsMSG, MsgID: m.ID, Body: sealed}})
}

func (c *conn) ack(t *wire.Transmission, k store.QueueKey) {
	id := t.Command.MsgID
	sub := c.s.subscriber(k)
	if sub == nil || sub.c != c {
		// Not subscribed here (e.g. after GET): acknowledge in the store,
		// then unblock a subscriber elsewhere that had it in flight.
		if _, _, err := c.s.cfg.Store.Ack(k, id); err != nil {
			c.storeFailed(t, err)
			return
		}
		c.answer(t, wire.Command{Kind: wire.AnsOK})
		if sub != nil {
			sub.mu.Lock()
			if sub.busy && sub.inflight == id {
				sub.busy = false
			}
			sub.mu.Unlock()
			c.s.deliverIfIdle(k)
		}
		return
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if !sub.busy || sub.inflight != id {
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
		sub.deliverLocked(&next, nil)
	}
}

func (c *conn) get(t *wire.Transmission, k store.QueueKey, boxKey [32]byte) {
	if sub := c.s.subscriber(k); sub != nil && sub.c == c {
		c.fail(t, wire.CodeProhibited)
		return
	}
	m, ok, err := c.s.cfg.Store.Peek(k)
	if err != nil {
		c.storeFailed(t, err)
		return
	}
	if !ok {
		c.answer(t, wire.Command{Kind: wire.AnsOK})
		return
	}
	c.s.cfg.Metrics.delivered()
	sealed := wire.SealMessage(&boxKey, m.ID, m.Time, m.Quota, m.Body)
	c.answer(t, wire.Command{Kind: wire.AnsMSG, MsgID: m.ID, Body: sealed})
}

var _ = ed25519.PublicKeySize
