package agent

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/wisp-chat/wisp/crypto/box"
	"github.com/wisp-chat/wisp/server/wire"
)

// Queue rotation (SPEC.md, "Queue rotation"). The receiver of a direction
// replaces its queue: it creates a new one, announces it in a KindQueueNew
// message on the connection, and keeps receiving on both until the first
// message arrives on the new one in order; then the old one is deleted.
// The sender moves to the new queue before the next outbox entry it has
// not tried yet (SKEY there first). The ratchet is kept.

// Errors callers branch on.
var (
	// ErrRotating: a rotation of this connection's receiving queue is
	// already under way.
	ErrRotating = errors.New("agent: the receiving queue is already being changed")
	// ErrRotationTimeout: the peer did not move to the new queue in time;
	// the old queue stays in use.
	ErrRotationTimeout = errors.New("the contact did not move to the new queue in time; the old one is still used")
	// ErrPeerQueueGone: the queue the peer announced is gone; we keep
	// sending to the old one.
	ErrPeerQueueGone = errors.New("the contact's new queue is gone; still sending to the old one")
)

// RotationPolicy configures automatic queue rotation. The zero value is
// the default schedule.
type RotationPolicy struct {
	// Every is the mean time a receiving queue is used (default 7 days).
	Every time.Duration
	// Messages is the mean number of messages received on one queue
	// (default 1,000). Whichever of the two comes first starts a rotation;
	// both are drawn anew, ±25 %, for every queue, so that the two sides'
	// rotations do not align.
	Messages uint64
	// Timeout abandons a rotation the peer has not followed (default 7
	// days): the new queue is deleted and the old one stays in use.
	Timeout time.Duration
	// Check is how often the agent looks for due work: rotations,
	// timeouts and old queues to delete (default 1 minute).
	Check time.Duration
	// Grace keeps an old queue that may still receive (after an abandoned
	// rotation, or one completed without the old queue drained, see
	// holdQuiet) before it is deleted (default 1 hour).
	Grace time.Duration
	// Manual turns the schedule off; Rotate still works.
	Manual bool
	// Relay chooses the relay for a scheduled rotation's new queue;
	// nil keeps the current relay (the queue IDs and keys are new anyway).
	Relay func(current wire.Address) wire.Address
}

func (p RotationPolicy) withDefaults() RotationPolicy {
	if p.Every == 0 {
		p.Every = 7 * 24 * time.Hour
	}
	if p.Messages == 0 {
		p.Messages = 1000
	}
	if p.Timeout == 0 {
		p.Timeout = 7 * 24 * time.Hour
	}
	if p.Check == 0 {
		p.Check = time.Minute
	}
	if p.Grace == 0 {
		p.Grace = time.Hour
	}
	return p
}

// RotationEvents is implemented by Events that follow queue rotations.
type RotationEvents interface {
	// Rotation reports a change of conn's receiving queue: a rotation to
	// relay started (done false), completed (done, err nil), or was
	// abandoned (done, err non-nil; the old queue is still in use).
	Rotation(conn ConnID, relay wire.Address, done bool, err error)
}

func (a *Agent) rotationEvent(id ConnID, relay string, done bool, err error) {
	re, ok := a.ev.(RotationEvents)
	if !ok {
		return
	}
	addr, perr := wire.ParseAddress(relay)
	if perr != nil {
		return
	}
	re.Rotation(id, addr, done, err)
}

// schedule draws the next automatic rotation of c's current queue.
func (a *Agent) schedule(c *connRecord) {
	jitter := func(f float64) float64 { return f * (0.75 + mrand.Float64()/2) }
	c.RotDue = time.Now().UTC().Add(time.Duration(jitter(float64(a.rot.Every))))
	c.RotLimit = max(1, uint64(jitter(float64(a.rot.Messages))))
	c.RotCount = 0
}

// Rotate replaces the connection's receiving queue with a new one on
// relay (which may be the current relay). It returns when the new queue
// exists and its announcement is queued; the peer moves to it when it
// next sends, and the old queue is deleted once everything sent to it has
// arrived. RotationEvents follow its progress.
func (a *Agent) Rotate(ctx context.Context, id ConnID, relay wire.Address) error {
	if err := a.tr.check(relay); err != nil {
		return err
	}
	h, err := a.handle(id)
	if err != nil {
		return err
	}
	check := func() (*connRecord, error) {
		c, err := a.loadConn(id)
		if err != nil {
			return nil, err
		}
		if c.State != StateConnected || c.Snd == nil || c.Ratchet == nil {
			return nil, ErrNotConnected
		}
		if c.NextRcv != nil {
			return nil, ErrRotating
		}
		return c, nil
	}
	h.mu.Lock()
	_, err = check()
	h.mu.Unlock()
	if err != nil {
		return err
	}
	q, err := a.newRcvQueue(ctx, relay)
	if err != nil {
		return err
	}
	drop := func() {
		if r, sub, err := q.subscription(); err == nil {
			_ = a.tr.deleteQueue(context.WithoutCancel(ctx), r, sub)
		}
	}
	qk, err := box.PrivateKeyFromBytes(q.QueueKey)
	if err != nil {
		return err
	}
	body, err := encodeReply(replyQueue{Relay: relay, SenderID: q.SndID, QueueKey: qk.PublicKey()}, nil)
	if err != nil {
		drop()
		return err
	}
	h.mu.Lock()
	c, err := check()
	if err == nil {
		err = a.announce(c, &q, body)
	}
	h.mu.Unlock()
	if err != nil {
		drop()
		return err
	}
	a.mu.Lock()
	a.byRcv[q.RcvID] = id
	a.mu.Unlock()
	if _, sub, err := q.subscription(); err != nil {
		a.ev.Problem(id, err)
	} else if err := a.tr.subscribe(ctx, relay, sub); err != nil {
		a.ev.Problem(id, fmt.Errorf("subscribing: %w", err)) // the pool subscribes when the relay is back
	}
	h.poke()
	a.rotationEvent(id, q.Relay, false, nil)
	return nil
}

// announce queues KindQueueNew and records q as the next queue, in the
// order of every send: outbox, then the connection record.
func (a *Agent) announce(c *connRecord, q *rcvQueue, body []byte) error {
	e, err := a.seal(c, KindQueueNew, body, c.SentID+1, c.SentHash)
	if err != nil {
		return err
	}
	if err := a.putOutbox(c.ID, e); err != nil {
		return err
	}
	c.NextRcv, c.RotStart = q, time.Now().UTC()
	if err := a.saveConn(c); err != nil {
		_ = a.store.Delete(outboxKey(c.ID, e.ID))
		return err
	}
	return nil
}

// announced reports whether an outbox entry that a crash left ahead of
// the record may be sealed again: anything but a KindQueueNew whose queue
// the record does not hold as NextRcv.
func (a *Agent) announced(c *connRecord, e *outboxEntry) bool {
	if e.Kind != KindQueueNew {
		return true
	}
	q, _, err := decodeReply(e.Body)
	return err == nil && c.NextRcv != nil && q.SenderID == c.NextRcv.SndID
}

// peerRotated handles KindQueueNew: the peer's new queue is used from the
// next outbox entry on; the test message makes sure there is one. It
// changes c in memory; receive saves it. A non-nil fatal error means the
// message must be received again (storage failed).
func (a *Agent) peerRotated(c *connRecord, body []byte) (fatal, problem error) {
	if c.State != StateConnected || c.Snd == nil {
		return nil, fmt.Errorf("%w: a new queue before the connection was up", ErrMalformed)
	}
	rq, rest, err := decodeReply(body)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: new queue", ErrMalformed)
	}
	if err := a.tr.check(rq.Relay); err != nil {
		return nil, fmt.Errorf("the contact's new queue: %w", err)
	}
	_, seed, err := newAuthKey()
	if err != nil {
		return err, nil
	}
	qk, err := box.GenerateKey(a.rand)
	if err != nil {
		return err, nil
	}
	c.NextSnd = &sndQueue{Relay: rq.Relay.String(), SndID: rq.SenderID, AuthSeed: seed, QueueKey: qk.Bytes(), PeerKey: rq.QueueKey.Bytes()}
	e, err := a.seal(c, KindQueueTest, nil, c.SentID+1, c.SentHash)
	if err != nil {
		return err, nil
	}
	if err := a.putOutbox(c.ID, e); err != nil {
		return err, nil
	}
	return nil, nil
}

// switchQueue moves the sending side to c.NextSnd: SKEY there (a repeat
// with the same key is OK after a crash), then the record. AUTH means the
// queue is gone (the peer abandoned the rotation): keep the old one.
func (a *Agent) switchQueue(ctx context.Context, id ConnID, h *connHandle, c *connRecord) (*connRecord, error) {
	next := *c.NextSnd
	relay, err := wire.ParseAddress(next.Relay)
	if err != nil {
		return nil, err
	}
	auth, err := authKey(next.AuthSeed)
	if err != nil {
		return nil, err
	}
	err = a.tr.secure(ctx, relay, next.SndID, auth)
	gone := errors.Is(err, wire.CodeAuth)
	if err != nil && !gone {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	c, err = a.loadConn(id)
	if err != nil {
		return nil, err
	}
	if c.NextSnd == nil || c.NextSnd.SndID != next.SndID {
		return c, nil // replaced meanwhile; the next round looks again
	}
	if gone {
		c.NextSnd = nil
	} else {
		next.Secured = true
		c.Snd, c.NextSnd = &next, nil
	}
	if err := a.saveConn(c); err != nil {
		return nil, err
	}
	h.tried = 0
	if gone {
		a.ev.Problem(id, ErrPeerQueueGone)
	}
	return c, nil
}

// completeRotation makes the announced queue the current one, in memory;
// the old one is retired (deleted on its relay by the maintenance loop).
// After an in-order first message everything sent to the old queue has
// arrived, so it goes at once; after a forced one (holdQuiet) a message
// may still be on its way there, so it stays, and is read, for
// RotationPolicy.Grace.
func (a *Agent) completeRotation(c *connRecord, forced bool) {
	old := c.Rcv
	old.DeleteAfter = time.Now().UTC()
	if forced {
		old.DeleteAfter = old.DeleteAfter.Add(a.rot.Grace)
	}
	c.Retired = append(c.Retired, old)
	c.Rcv = *c.NextRcv
	c.NextRcv, c.RotStart = nil, time.Time{}
	a.schedule(c)
}

// pokeRotation wakes the maintenance loop.
func (a *Agent) pokeRotation() {
	select {
	case a.rotWake <- struct{}{}:
	default:
	}
}

// maintain runs scheduled rotations, abandons rotations past their
// timeout and deletes retired queues, every RotationPolicy.Check and when
// poked.
func (a *Agent) maintain() {
	defer a.wg.Done()
	t := time.NewTicker(a.rot.Check)
	defer t.Stop()
	for {
		for _, id := range a.Connections() {
			if a.ctx.Err() != nil {
				return
			}
			a.maintainConn(id)
		}
		select {
		case <-t.C:
		case <-a.rotWake:
		case <-a.ctx.Done():
			return
		}
	}
}

func (a *Agent) maintainConn(id ConnID) {
	h, err := a.handle(id)
	if err != nil {
		return
	}
	h.mu.Lock()
	c, err := a.loadConn(id)
	held := h.held != nil
	h.mu.Unlock()
	if err != nil || c.State == StateDeleting {
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	for _, q := range c.Retired {
		if !time.Now().Before(q.DeleteAfter) {
			a.deleteRetired(ctx, id, h, q)
		}
	}
	if c.State != StateConnected {
		return
	}
	now := time.Now()
	switch {
	case c.RotLimit == 0:
		// A connection from before rotation, or just connected: start
		// its schedule.
		a.update(id, h, func(c *connRecord) bool {
			if c.RotLimit != 0 {
				return false
			}
			a.schedule(c)
			return true
		})
	case c.NextRcv != nil && !held && now.Sub(c.RotStart) > a.rot.Timeout:
		next := c.NextRcv.RcvID
		a.update(id, h, func(c *connRecord) bool {
			if h.held != nil || c.NextRcv == nil || c.NextRcv.RcvID != next {
				return false
			}
			next := *c.NextRcv
			next.DeleteAfter = time.Now().UTC().Add(a.rot.Grace) // in case the peer moved after all
			c.Retired = append(c.Retired, next)
			c.NextRcv, c.RotStart = nil, time.Time{}
			a.schedule(c)
			return true
		})
		a.rotationEvent(id, c.Rcv.Relay, true, ErrRotationTimeout)
		a.pokeRotation()
	case c.NextRcv == nil && !a.rot.Manual && (now.After(c.RotDue) || c.RotCount >= c.RotLimit):
		relay, err := wire.ParseAddress(c.Rcv.Relay)
		if err != nil {
			return
		}
		if a.rot.Relay != nil {
			relay = a.rot.Relay(relay)
		}
		// Failures (the relay is down) are tried again at the next check.
		_ = a.Rotate(ctx, id, relay)
	}
}

// update changes the connection record under its lock; f reports whether
// it changed anything.
func (a *Agent) update(id ConnID, h *connHandle, f func(*connRecord) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	c, err := a.loadConn(id)
	if err != nil || !f(c) {
		return
	}
	if err := a.saveConn(c); err != nil {
		a.ev.Problem(id, fmt.Errorf("saving the connection: %w", err))
	}
}

// deleteRetired deletes an old receiving queue on its relay, then forgets
// it. Anything still on it was a copy: the rotation completed only after
// every message sent to it had arrived (or it was never used).
func (a *Agent) deleteRetired(ctx context.Context, id ConnID, h *connHandle, q rcvQueue) {
	relay, sub, err := q.subscription()
	if err == nil {
		err = a.tr.deleteQueue(ctx, relay, sub)
	}
	if err != nil && !errors.Is(err, wire.CodeAuth) {
		return // tried again at the next check
	}
	a.update(id, h, func(c *connRecord) bool {
		for i, r := range c.Retired {
			if r.RcvID == q.RcvID {
				c.Retired = append(c.Retired[:i:i], c.Retired[i+1:]...)
				return true
			}
		}
		return false
	})
	a.mu.Lock()
	if a.byRcv[q.RcvID] == id {
		delete(a.byRcv, q.RcvID)
	}
	a.mu.Unlock()
}

// heldMsg is a message that arrived on a rotation's new queue ahead of
// messages still on the old one.
type heldMsg struct {
	relay string
	rcvID wire.QueueID
	id    uint64 // its msg_id
	msg   wire.Message
}

// release handles the held message once the old queue has caught up with
// it (c is the record just saved), and acknowledges it on its relay.
func (a *Agent) release(c *connRecord, h *connHandle) {
	m := h.held
	if m == nil || m.id != c.RcvdID+1 {
		return
	}
	h.held = nil
	ack, err := a.receive(c, h, m.rcvID, m.msg)
	if err != nil {
		a.ev.Problem(c.ID, err)
	}
	if ack {
		if relay, perr := wire.ParseAddress(m.relay); perr == nil {
			a.tr.ack(relay, m.rcvID, m.msg.ID)
		}
	}
}

// holdQuiet is how long the old queue must have been quiet, with its
// relay connected, before a held message is let through: the message it
// waits for is probably not coming (the peer gave it up: a failed send
// leaves a gap in the msg_ids), and it arrives with Integrity.Missing
// set. If it comes after all, the old queue is still read for
// RotationPolicy.Grace and it is delivered late.
const holdQuiet = 15 * time.Second

// watchHeld arms the check of a held message (under h.mu).
func (a *Agent) watchHeld(id ConnID, h *connHandle) {
	if h.holdTimer != nil {
		return
	}
	h.holdTimer = time.AfterFunc(holdQuiet, func() { a.checkHeld(id, h) })
}

func (a *Agent) checkHeld(id ConnID, h *connHandle) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.holdTimer = nil
	if h.closed || h.held == nil {
		return
	}
	c, err := a.loadConn(id)
	if err != nil {
		return
	}
	old, err := wire.ParseAddress(c.Rcv.Relay)
	if err != nil || !a.tr.connected(old) || time.Since(h.lastOld) < holdQuiet {
		a.watchHeld(id, h) // the old relay is down or still delivering
		return
	}
	m := h.held
	h.held, h.forceNext = nil, true
	ack, err := a.receive(c, h, m.rcvID, m.msg)
	h.forceNext = false
	if err != nil {
		a.ev.Problem(id, err)
	}
	if ack {
		if relay, perr := wire.ParseAddress(m.relay); perr == nil {
			a.tr.ack(relay, m.rcvID, m.msg.ID)
		}
	}
}
