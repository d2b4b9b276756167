package relay

import (
	"context"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/wire"
)

// A connection's output: transmissions wait in conn.out for one flush
// goroutine, counted in bytes against Limits.MaxPendingBytes together
// with the room reserved for GET answers in progress. While it is full
// the read loop reads nothing more (backpressure) and MSG pushes wait in
// conn.deferred until written bytes free room.

// outItem is a marshalled transmission waiting for the writer and what
// it counts against Limits.MaxPendingBytes.
type outItem struct {
	raw  []byte
	cost int
}

// msgCost is what a MSG counts against Limits.MaxPendingBytes: a whole
// block payload, the most one MSG transmission takes.
const msgCost = wire.BlockPayloadSize

// waitRoom waits until cost more bytes fit in the output (reserving
// them) or, for cost 0, until the output is below its bound. It returns
// false when the connection closes first.
func (c *conn) waitRoom(cost int) bool {
	for {
		ok, room := c.tryRoom(cost)
		if ok {
			return true
		}
		select {
		case <-room:
		case <-c.closing:
			return false
		}
	}
}

// tryRoom reserves cost bytes of output if they fit now; otherwise it
// returns the channel closed when bytes are written.
func (c *conn) tryRoom(cost int) (bool, <-chan struct{}) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	fits := c.outBytes+cost <= c.s.cfg.Limits.MaxPendingBytes
	if cost == 0 {
		fits = c.outBytes < c.s.cfg.Limits.MaxPendingBytes
	}
	if fits {
		c.outBytes += cost
		return true, nil
	}
	return false, c.room
}

// waitRoomReading is waitRoom for the read loop: a wait that blocks is
// a pause (conn.pause).
func (c *conn) waitRoomReading(cost int) bool {
	if ok, _ := c.tryRoom(cost); ok {
		return true
	}
	return c.pause(func() bool { return c.waitRoom(cost) })
}

// unreserve returns room reserved and not used. Deferred pushes that
// now fit are delivered on their own goroutine: the caller may hold a
// subscription's lock.
func (c *conn) unreserve(cost int) {
	if cost == 0 {
		return
	}
	c.outMu.Lock()
	c.outBytes -= cost
	c.freedLocked()
	more := len(c.deferred) > 0 && !c.writing
	c.outMu.Unlock()
	if more {
		go c.deliverDeferred()
	}
}

// freedLocked wakes whoever waits for room.
func (c *conn) freedLocked() {
	close(c.room)
	c.room = make(chan struct{})
}

// push queues a transmission for the writer. reserved is room already
// counted for it (a MSG); anything else counts its length, and is always
// taken: the answers of commands in progress are small and their number
// is bounded, because the read loop stops while the output is full.
func (c *conn) push(t *wire.Transmission, reserved int) {
	raw, err := t.Marshal()
	if err != nil {
		// Only relay-built transmissions reach here; they always encode.
		panic("relay: encoding answer: " + err.Error())
	}
	cost := reserved
	c.outMu.Lock()
	if cost == 0 {
		cost = 2 + len(raw)
		c.outBytes += cost
	}
	c.out = append(c.out, outItem{raw: raw, cost: cost})
	start := !c.writing
	c.writing = true
	c.outMu.Unlock()
	if start {
		go c.flush()
	}
}

// flush writes queued transmissions, batched into blocks, until none are
// left. At most one flush runs per connection, so the send chain is used
// by one goroutine at a time. A block that cannot be written within
// WriteTimeout drops the connection.
func (c *conn) flush() {
	var raws [][]byte
	for {
		c.outMu.Lock()
		pending := c.out
		c.out = nil
		if len(pending) == 0 {
			waiting := c.takeDeferredLocked()
			if len(waiting) == 0 {
				c.writing = false
				c.freedLocked()
				c.outMu.Unlock()
				return
			}
			c.outMu.Unlock()
			c.deliver(waiting)
			continue
		}
		c.outMu.Unlock()
		raws = raws[:0]
		cost := 0
		for _, it := range pending {
			raws = append(raws, it.raw)
			cost += it.cost
		}
		blocks, err := c.sess.SealBatch(raws)
		for _, block := range blocks {
			if err != nil {
				break
			}
			wctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.Limits.WriteTimeout)
			err = c.ws.Write(wctx, websocket.MessageBinary, block)
			if err != nil && wctx.Err() != nil && c.ctx.Err() == nil {
				c.abort("client not reading")
			}
			cancel()
		}
		if err != nil {
			// writing stays true: nothing more is written on this conn.
			c.closeWith(websocket.StatusInternalError, "write failed")
			return
		}
		c.outMu.Lock()
		c.outBytes -= cost
		c.freedLocked()
		c.outMu.Unlock()
		c.deliverDeferred()
	}
}

// takeDeferredLocked removes the deferred deliveries that now have room.
func (c *conn) takeDeferredLocked() []*subscription {
	n := min(len(c.deferred), max(0, (c.s.cfg.Limits.MaxPendingBytes-c.outBytes)/msgCost))
	if n == 0 {
		return nil
	}
	taken := append([]*subscription(nil), c.deferred[:n]...)
	c.deferred = append(c.deferred[:0], c.deferred[n:]...)
	for _, sub := range taken {
		sub.deferred = false
	}
	return taken
}

// reserveOrDefer reserves room for a MSG to sub or, when there is none,
// queues sub to be delivered when room frees. Both under one lock, so no
// wakeup is lost: whatever holds the room (answers being written, GETs
// in progress) frees it later and then delivers the deferred.
func (c *conn) reserveOrDefer(sub *subscription) bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.outBytes+msgCost <= c.s.cfg.Limits.MaxPendingBytes {
		c.outBytes += msgCost
		return true
	}
	if !sub.deferred {
		sub.deferred = true
		c.deferred = append(c.deferred, sub)
	}
	return false
}

// deliverDeferred delivers the deferred pushes that have room now. The
// caller holds no lock.
func (c *conn) deliverDeferred() {
	c.outMu.Lock()
	waiting := c.takeDeferredLocked()
	c.outMu.Unlock()
	c.deliver(waiting)
}

func (c *conn) deliver(subs []*subscription) {
	for _, sub := range subs {
		c.s.deliverIfIdle(sub.key)
	}
}

// waitFlushed waits until everything queued is written, for at most d.
func (c *conn) waitFlushed(d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.outMu.Lock()
		idle := !c.writing && len(c.out) == 0
		room := c.room
		c.outMu.Unlock()
		if idle {
			return
		}
		select {
		case <-room:
		case <-c.closing:
			return
		case <-deadline.C:
			return
		}
	}
}
