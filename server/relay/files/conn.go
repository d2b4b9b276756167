package files

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/relay/internal/handshake"
	"github.com/wisp-chat/wisp/server/relay/internal/routes"
	"github.com/wisp-chat/wisp/server/wire"
)

// conn is one file session.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	sess *wire.Session
	ctx  context.Context

	writeMu    sync.Mutex    // serialises the send chain and the socket
	closing    chan struct{} // closed when the session starts to end
	closed     chan struct{} // closed when the WebSocket close (or abort) returned
	once       sync.Once
	slots      chan struct{}  // commands in progress (MaxInFlight)
	chunkSlots chan struct{}  // this session's share of the chunk slots (MaxChunkOpsPerConn)
	wg         sync.WaitGroup // the keepalive
	cmds       sync.WaitGroup // commands in progress
	// drainMu orders starting a command (cmds.Go) before a shutdown's
	// cmds.Wait: once draining is set, no command starts.
	drainMu  sync.Mutex
	draining bool

	fnew       *bucket // the session's FNEW budget
	unfilledMu sync.Mutex
	// unfilled holds the chunks created in this session and neither
	// uploaded nor deleted through it; creating counts the FNEWs in
	// progress, which hold a place under MaxUnfilledPerConn.
	unfilled map[SenderKey]struct{}
	creating int

	// Private routing (proxy.go).
	proven     atomic.Bool                        // may use this relay as a proxy
	prxy, pfwd *bucket                            // PRXY and PFWD budgets
	fwd        atomic.Pointer[routes.Destination] // this session's forward key as a destination
}

// finish ends the session: no further command starts, those in progress
// finish and write their answers (for at most DrainTimeout), then the
// close frame says why. Shutdown and protocol violations end a session
// this way, so a client that reads gets the answer of every command that
// took effect; the commands of one that does not read are cut short by
// the close.
func (c *conn) finish(code websocket.StatusCode, reason string) {
	c.drainMu.Lock()
	c.draining = true
	c.drainMu.Unlock()
	done := make(chan struct{})
	go func() {
		c.cmds.Wait()
		close(done)
	}()
	t := time.NewTimer(c.s.cfg.Limits.DrainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	c.closeWith(code, reason)
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

// readBlock returns the next handshake block, read as on the queue
// endpoint (SPEC §1).
func (c *conn) readBlock(ctx context.Context) ([]byte, bool) {
	return handshake.ReadBlock(ctx, c.ws, c.closeWith)
}

// read returns the next frame, closing the session with a clear reason
// for text messages and sizes that are no frame size.
func (c *conn) read(ctx context.Context) ([]byte, bool) {
	typ, b, err := wire.ReadFrame(ctx, c.ws)
	switch {
	case typ != websocket.MessageBinary && (err == nil || errors.Is(err, wire.ErrBlockSize)):
		c.closeWith(websocket.StatusUnsupportedData, "binary frames only")
		return nil, false
	case errors.Is(err, wire.ErrBlockSize) || websocket.CloseStatus(err) == websocket.StatusMessageTooBig:
		c.closeWith(websocket.StatusPolicyViolation, "frame size must be a chunk class size")
		return nil, false
	case err != nil:
		c.closeWith(websocket.StatusPolicyViolation, "read failed")
		return nil, false
	}
	return b, true
}

func (c *conn) serve(ctx context.Context) {
	defer c.wg.Wait()
	defer c.cmds.Wait()
	defer c.closeWith(websocket.StatusNormalClosure, "")
	c.ws.SetReadLimit(wire.MaxFrameSize)
	lim := c.s.cfg.Limits
	hctx, cancel := context.WithTimeout(ctx, lim.HandshakeTimeout)
	ok := c.handshake(hctx)
	cancel()
	if !ok {
		return
	}
	c.ctx = ctx
	c.wg.Go(c.keepalive)
	for {
		b, ok := c.read(ctx)
		if !ok {
			return
		}
		raw, class, err := c.sess.OpenFrame(b)
		switch {
		case errors.Is(err, wire.ErrDecrypt):
			c.finish(websocket.StatusPolicyViolation, "frame authentication failed")
			return
		case err != nil:
			c.finish(websocket.StatusPolicyViolation, "malformed frame")
			return
		}
		// A chunk frame takes a chunk slot before the next frame is
		// read, so the chunks held in memory stay bounded.
		chunk := class != wire.ClassControl
		if chunk && !c.chunkOp(c.s.putOps) {
			return
		}
		select {
		case c.slots <- struct{}{}:
		case <-c.closing:
			if chunk {
				c.chunkDone(c.s.putOps)
			}
			return
		}
		if !c.start(func() {
			defer func() { <-c.slots }()
			if chunk {
				defer c.chunkDone(c.s.putOps)
			}
			c.run(raw, class)
		}) {
			<-c.slots
			if chunk {
				c.chunkDone(c.s.putOps)
			}
			<-c.closing // finish closes the session
			return
		}
	}
}

// start runs a command on its own goroutine unless the session drains.
func (c *conn) start(cmd func()) bool {
	c.drainMu.Lock()
	defer c.drainMu.Unlock()
	if c.draining {
		return false
	}
	c.cmds.Go(cmd)
	return true
}

// handshake runs the session handshake (package handshake) and keeps
// the session. Its blocks are read as on the queue endpoint.
func (c *conn) handshake(ctx context.Context) bool {
	sess, ok := handshake.Relay{
		Identity: c.s.cfg.Identity,
		Read:     c.readBlock,
		Write:    func(ctx context.Context, b []byte) error { return c.ws.Write(ctx, websocket.MessageBinary, b) },
		Close:    c.closeWith,
	}.Run(ctx)
	c.sess = sess
	return ok
}

// keepalive pings the client; a client that does not answer is dropped.
func (c *conn) keepalive() {
	lim := c.s.cfg.Limits
	t := time.NewTimer(lim.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(c.ctx, lim.PingTimeout)
		err := c.ws.Ping(pctx)
		cancel()
		if err != nil {
			// The peer no longer answers: no close handshake.
			c.once.Do(func() {
				close(c.closing)
				_ = c.ws.CloseNow()
				close(c.closed)
			})
			return
		}
		t.Reset(lim.PingInterval)
	}
}

// answer seals and writes one answer in a frame of the class. The write
// has Limits.WriteTimeout: a client that does not take the frame in time
// loses the session ("client not reading"; the close frame cannot reach a
// client that does not read), which ends the wait of every command queued
// behind it and frees their slots.
func (c *conn) answer(t *wire.FileTransmission, class wire.ChunkClass, cmd wire.FileCommand) {
	out := &wire.FileTransmission{CorrID: t.CorrID, EntityID: t.EntityID, Command: cmd}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	select {
	case <-c.closing:
		return // the session is ending: nothing more goes out
	default:
	}
	frame, err := c.sess.SealFrame(class, out, nil)
	if err != nil {
		// Only relay-built answers reach here; they always encode.
		panic("files: encoding answer: " + err.Error())
	}
	wctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.Limits.WriteTimeout)
	err = c.ws.Write(wctx, websocket.MessageBinary, frame)
	cancel()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		c.closeWith(websocket.StatusPolicyViolation, "client not reading")
	case err != nil:
		c.closeWith(websocket.StatusInternalError, "write failed")
	}
}

func (c *conn) ok(t *wire.FileTransmission) {
	c.answer(t, wire.ClassControl, wire.FileCommand{Kind: wire.AnsFOK})
}

func (c *conn) fail(t *wire.FileTransmission, code wire.ErrCode) {
	c.answer(t, wire.ClassControl, wire.FileCommand{Kind: wire.AnsFERR, Code: code})
}

// run handles one frame's transmission. A panic (a corrupt store can make
// bbolt panic, and a fault on its memory map is turned into one) ends only
// this command: handle answers ERR INTERNAL; a panic outside a command
// closes the session. Neither logs IDs.
func (c *conn) run(raw []byte, class wire.ChunkClass) {
	debug.SetPanicOnFault(true)
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("file session panicked; session closed", "panic", panicKind(p))
			c.closeWith(websocket.StatusInternalError, "internal error")
		}
	}()
	c.handle(raw, class)
}

// panicKind describes a recovered panic for the log without its data:
// the runtime's own messages (indexes, lengths, addresses), else the
// value's type.
func panicKind(p any) string {
	if re, ok := p.(runtime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("%T", p)
}

func (c *conn) handle(raw []byte, class wire.ChunkClass) {
	t, err := wire.ParseFileTransmission(raw)
	if err != nil {
		code := wire.CodeForParseError(err)
		if code == wire.CodeBlock {
			t = wire.FileTransmission{} // the IDs cannot be trusted
		}
		c.fail(&t, code)
		return
	}
	k := t.Command.Kind
	switch {
	case class != wire.ClassControl && k != wire.CmdFPUT:
		c.fail(&t, wire.CodeCmd)
		return
	case k == wire.CmdFPRXY || k == wire.CmdFPFWD:
		c.proxyCommand(&t)
		return
	case k == wire.CmdFRKEY || k == wire.CmdFRFWD:
		c.destinationCommand(&t)
		return
	}
	needEntity := k != wire.CmdFNEW && k != wire.CmdFPING
	if !k.FromClient() || needEntity != (len(t.EntityID) == wire.IDSize) ||
		(k == wire.CmdFPING) != (t.Signature == nil) || len(t.CorrID) == 0 ||
		(k != wire.CmdFPUT && class != wire.ClassControl) {
		c.fail(&t, wire.CodeCmd)
		return
	}
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("file command panicked (corrupt store?)", "cmd", k.String(), "panic", panicKind(p))
			c.fail(&t, wire.CodeInternal)
		}
	}()
	switch k {
	case wire.CmdFPING:
		c.answer(&t, wire.ClassControl, wire.FileCommand{Kind: wire.AnsFPONG})
	case wire.CmdFNEW:
		c.create(&t)
	case wire.CmdFPUT, wire.CmdFDEL:
		c.senderCommand(&t, class)
	default:
		c.recipientCommand(&t, c.sess.ID, c.answerTo(&t))
	}
}

// answerTo answers t directly (not forwarded).
func (c *conn) answerTo(t *wire.FileTransmission) func(wire.ChunkClass, wire.FileCommand) {
	return func(class wire.ChunkClass, cmd wire.FileCommand) { c.answer(t, class, cmd) }
}

func (c *conn) create(t *wire.FileTransmission) {
	cmd := &t.Command
	pw := sha256.Sum256(cmd.Password)
	// A password in FNEW to a relay without one is ignored, as in NEW.
	pwOK := len(c.s.cfg.Password) == 0 || subtle.ConstantTimeCompare(pw[:], c.s.pwHash[:]) == 1
	if !t.Verify(c.sess.ID, cmd.AuthKey[:]) || !pwOK {
		c.fail(t, wire.CodeAuth)
		return
	}
	if !c.admitFNEW() {
		c.fail(t, wire.CodeLimit)
		return
	}
	var made SenderKey
	created := false
	defer func() { c.created(made, created) }()
	ans := wire.FileCommand{Kind: wire.AnsFIDS, RcvIDs: make([]wire.ChunkRecipientID, len(cmd.Recipients))}
	rcpts := make(map[RecipientKey]Recipient, len(cmd.Recipients))
	_, _ = rand.Read(ans.SndID[:])
	for i, rk := range cmd.Recipients {
		dh, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			c.fail(t, wire.CodeInternal)
			return
		}
		// As in the handshake: crypto/ecdh refuses a key whose shared
		// secret is all zeros (the all-zero key and the other low-order
		// points), which would make the download box key public.
		pub, err := ecdh.X25519().NewPublicKey(rk.DH[:])
		if err == nil {
			_, err = dh.ECDH(pub)
		}
		if err != nil {
			c.fail(t, wire.CodeCmd)
			return
		}
		id := &ans.RcvIDs[i]
		_, _ = rand.Read(id.ID[:])
		copy(id.RelayDH[:], dh.PublicKey().Bytes())
		priv := [32]byte(dh.Bytes())
		rcpts[RecipientKeyOf(id.ID)] = Recipient{Auth: rk.Auth, BoxKey: *wire.BoxKey(&rk.DH, &priv)}
		clear(priv[:])
	}
	made = SenderKeyOf(ans.SndID)
	err := c.s.cfg.Store.Create(made, Chunk{Class: cmd.Class, SenderAuth: cmd.AuthKey}, rcpts)
	if err != nil {
		c.storeFailed(t, err)
		return
	}
	created = true
	c.answer(t, wire.ClassControl, ans)
}

// admitFNEW takes a place under MaxUnfilledPerConn and a token of the
// session's and of the relay's FNEW budgets, or takes nothing and reports
// false. Tokens are spent by every admitted FNEW, whatever its outcome;
// c.created releases the place.
func (c *conn) admitFNEW() bool {
	limit := c.s.cfg.Limits.MaxUnfilledPerConn
	c.unfilledMu.Lock()
	full := len(c.unfilled)+c.creating >= limit
	c.unfilledMu.Unlock()
	if full {
		c.pruneUnfilled()
	}
	c.unfilledMu.Lock()
	defer c.unfilledMu.Unlock()
	if len(c.unfilled)+c.creating >= limit {
		return false
	}
	now := c.s.now()
	if !c.fnew.take(now) {
		return false
	}
	if !c.s.fnew.take(now) {
		c.fnew.give()
		return false
	}
	c.creating++
	return true
}

// pruneUnfilled forgets the session's unfilled chunks that are gone or
// were uploaded through another session (after a reconnection).
func (c *conn) pruneUnfilled() {
	c.unfilledMu.Lock()
	keys := make([]SenderKey, 0, len(c.unfilled))
	for k := range c.unfilled {
		keys = append(keys, k)
	}
	c.unfilledMu.Unlock()
	for _, k := range keys {
		ch, err := c.s.cfg.Store.BySender(k)
		if errors.Is(err, ErrNotFound) || (err == nil && ch.Uploaded) {
			c.unfilledMu.Lock()
			delete(c.unfilled, k)
			c.unfilledMu.Unlock()
		}
	}
}

// created ends an admitted FNEW: the chunk, if created, stays counted
// until it is uploaded or deleted.
func (c *conn) created(k SenderKey, ok bool) {
	c.unfilledMu.Lock()
	defer c.unfilledMu.Unlock()
	c.creating--
	if ok {
		c.unfilled[k] = struct{}{}
	}
}

// filled forgets an unfilled chunk of the session once uploaded (giving
// its FNEW tokens back) or deleted.
func (c *conn) filled(k SenderKey, uploaded bool) {
	c.unfilledMu.Lock()
	_, ok := c.unfilled[k]
	delete(c.unfilled, k)
	c.unfilledMu.Unlock()
	if ok && uploaded {
		c.fnew.give()
		c.s.fnew.give()
	}
}

// storeFailed answers a store error.
func (c *conn) storeFailed(t *wire.FileTransmission, err error) {
	c.fail(t, c.storeCode(err))
}

// storeCode is the code of a store error; it logs the unexpected ones.
func (c *conn) storeCode(err error) wire.ErrCode {
	switch {
	case errors.Is(err, ErrNotFound):
		return wire.CodeAuth
	case errors.Is(err, ErrQuota):
		return wire.CodeQuota
	case errors.Is(err, ErrSize):
		return wire.CodeLarge
	case errors.Is(err, ErrNotReady):
		return wire.CodeNoMsg
	case errors.Is(err, ErrUploaded):
		return wire.CodeProhibited
	case errors.Is(err, ErrCorrupt):
		c.s.log.Error("stored chunk failed its digest check")
		return wire.CodeInternal
	default:
		c.s.log.Error("chunk store operation failed", "err", err)
		return wire.CodeInternal
	}
}

// chunkOp takes the slots of a command that holds a chunk in memory: one
// of the session's MaxChunkOpsPerConn, one of its kind's share (getOps or
// putOps), then one of the relay's MaxChunkOps. It reports false, holding
// none, when the session closes first.
func (c *conn) chunkOp(kind chan struct{}) bool {
	taken := 0
	for _, sem := range []chan struct{}{c.chunkSlots, kind, c.s.chunkOps} {
		select {
		case sem <- struct{}{}:
			taken++
		case <-c.closing:
			c.release(kind, taken)
			return false
		}
	}
	return true
}

// chunkDone gives back the slots of chunkOp.
func (c *conn) chunkDone(kind chan struct{}) { c.release(kind, 3) }

// release gives back the first n slots chunkOp takes, in reverse.
func (c *conn) release(kind chan struct{}, n int) {
	sems := []chan struct{}{c.chunkSlots, kind, c.s.chunkOps}
	for i := n - 1; i >= 0; i-- {
		<-sems[i]
	}
}

// authorized answers the command unless the lookup found its record
// (lookupErr nil) and the signature verifies by key. A missing record is
// verified against the dummy key, so AUTH costs the same either way.
func (c *conn) authorized(t *wire.FileTransmission, lookupErr error, key []byte) bool {
	return c.authorizedIn(t, c.sess.ID, lookupErr, key, func(code wire.ErrCode) { c.fail(t, code) })
}

// authorizedIn is authorized for a signature bound to sessID (a
// forwarded command's), answering with fail.
func (c *conn) authorizedIn(t *wire.FileTransmission, sessID [32]byte, lookupErr error, key []byte, fail func(wire.ErrCode)) bool {
	if lookupErr != nil && !errors.Is(lookupErr, ErrNotFound) {
		fail(c.storeCode(lookupErr))
		return false
	}
	if lookupErr != nil {
		key = c.s.dummyKey[:]
	}
	if ok := t.Verify(sessID, key); !ok || lookupErr != nil {
		fail(wire.CodeAuth)
		return false
	}
	return true
}

func (c *conn) senderCommand(t *wire.FileTransmission, class wire.ChunkClass) {
	k := SenderKeyOf(wire.ChunkID(t.EntityID))
	ch, err := c.s.cfg.Store.BySender(k)
	if !c.authorized(t, err, ch.SenderAuth[:]) {
		return
	}
	if t.Command.Kind == wire.CmdFDEL {
		if err := c.s.cfg.Store.Delete(k); err != nil {
			c.storeFailed(t, err)
			return
		}
		c.filled(k, false)
		c.ok(t)
		return
	}
	if class != ch.Class || len(t.Command.Data) != ch.Class.Size() {
		c.fail(t, wire.CodeLarge)
		return
	}
	if err := c.s.cfg.Store.Put(k, t.Command.Data); err != nil {
		c.storeFailed(t, err)
		return
	}
	c.filled(k, true)
	c.ok(t)
}

// recipientCommand runs FGET or FACK, signed over sessID (the session's,
// or a forwarded command's own), and answers with reply.
func (c *conn) recipientCommand(t *wire.FileTransmission, sessID [32]byte, reply func(wire.ChunkClass, wire.FileCommand)) {
	fail := func(code wire.ErrCode) {
		reply(wire.ClassControl, wire.FileCommand{Kind: wire.AnsFERR, Code: code})
	}
	rk := RecipientKeyOf(wire.ChunkID(t.EntityID))
	r, ch, err := c.s.cfg.Store.ByRecipient(rk)
	if !c.authorizedIn(t, sessID, err, r.Auth[:], fail) {
		return
	}
	if t.Command.Kind == wire.CmdFACK {
		if err := c.s.cfg.Store.Ack(rk); err != nil {
			fail(c.storeCode(err))
			return
		}
		reply(wire.ClassControl, wire.FileCommand{Kind: wire.AnsFOK})
		return
	}
	if !ch.Uploaded {
		fail(wire.CodeNoMsg)
		return
	}
	if !c.chunkOp(c.s.getOps) {
		return
	}
	defer c.chunkDone(c.s.getOps)
	data, err := c.s.cfg.Store.Read(&ch)
	if err != nil {
		fail(c.storeCode(err))
		return
	}
	sealed, err := wire.SealChunk(&r.BoxKey, data)
	if err != nil {
		fail(wire.CodeInternal)
		return
	}
	reply(ch.Class, wire.FileCommand{Kind: wire.AnsCHUNK, Data: sealed})
}
