package files

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/relay/internal/handshake"
	"github.com/wisp-chat/wisp/server/wire"
)

// conn is one file session.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	sess *wire.Session
	ctx  context.Context

	writeMu sync.Mutex // serialises the send chain and the socket
	closing chan struct{}
	once    sync.Once
	slots   chan struct{}
	wg      sync.WaitGroup
}

func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.once.Do(func() {
		close(c.closing)
		go func() { _ = c.ws.Close(code, reason) }()
	})
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
			c.closeWith(websocket.StatusPolicyViolation, "frame authentication failed")
			return
		case err != nil:
			c.closeWith(websocket.StatusPolicyViolation, "malformed frame")
			return
		}
		// A chunk frame takes a relay-wide slot before the next frame is
		// read, so the chunks held in memory stay bounded.
		chunk := class != wire.ClassControl
		if chunk && !c.chunkOp() {
			return
		}
		select {
		case c.slots <- struct{}{}:
		case <-c.closing:
			return
		}
		c.wg.Go(func() {
			defer func() { <-c.slots }()
			if chunk {
				defer func() { <-c.s.chunkOps }()
			}
			c.handle(raw, class)
		})
	}
}

// handshake runs the session handshake (package handshake) and keeps
// the session.
func (c *conn) handshake(ctx context.Context) bool {
	sess, ok := handshake.Relay{
		Identity: c.s.cfg.Identity,
		Read:     c.read,
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
			})
			return
		}
		t.Reset(lim.PingInterval)
	}
}

// answer seals and writes one answer in a frame of the class.
func (c *conn) answer(t *wire.FileTransmission, class wire.ChunkClass, cmd wire.FileCommand) {
	out := &wire.FileTransmission{CorrID: t.CorrID, EntityID: t.EntityID, Command: cmd}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	frame, err := c.sess.SealFrame(class, out, nil)
	if err != nil {
		// Only relay-built answers reach here; they always encode.
		panic("files: encoding answer: " + err.Error())
	}
	if err := c.ws.Write(c.ctx, websocket.MessageBinary, frame); err != nil {
		c.closeWith(websocket.StatusInternalError, "write failed")
	}
}

func (c *conn) ok(t *wire.FileTransmission) {
	c.answer(t, wire.ClassControl, wire.FileCommand{Kind: wire.AnsFOK})
}

func (c *conn) fail(t *wire.FileTransmission, code wire.ErrCode) {
	c.answer(t, wire.ClassControl, wire.FileCommand{Kind: wire.AnsFERR, Code: code})
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
	needEntity := k != wire.CmdFNEW && k != wire.CmdFPING
	if !k.FromClient() || needEntity != (len(t.EntityID) == wire.IDSize) ||
		(k != wire.CmdFPING && t.Signature == nil) || len(t.CorrID) == 0 ||
		(k != wire.CmdFPUT && class != wire.ClassControl) {
		c.fail(&t, wire.CodeCmd)
		return
	}
	switch k {
	case wire.CmdFPING:
		c.answer(&t, wire.ClassControl, wire.FileCommand{Kind: wire.AnsFPONG})
	case wire.CmdFNEW:
		c.create(&t)
	case wire.CmdFPUT, wire.CmdFDEL:
		c.senderCommand(&t, class)
	default:
		c.recipientCommand(&t)
	}
}

func (c *conn) create(t *wire.FileTransmission) {
	cmd := &t.Command
	pw := sha256.Sum256(cmd.Password)
	pwOK := subtle.ConstantTimeCompare(pw[:], c.s.pwHash[:]) == 1
	if !t.Verify(c.sess.ID, cmd.AuthKey[:]) || !pwOK {
		c.fail(t, wire.CodeAuth)
		return
	}
	ans := wire.FileCommand{Kind: wire.AnsFIDS, RcvIDs: make([]wire.ChunkRecipientID, len(cmd.Recipients))}
	rcpts := make(map[RecipientKey]Recipient, len(cmd.Recipients))
	_, _ = rand.Read(ans.SndID[:])
	for i, rk := range cmd.Recipients {
		dh, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			c.fail(t, wire.CodeInternal)
			return
		}
		id := &ans.RcvIDs[i]
		_, _ = rand.Read(id.ID[:])
		copy(id.RelayDH[:], dh.PublicKey().Bytes())
		priv := [32]byte(dh.Bytes())
		rcpts[RecipientKeyOf(id.ID)] = Recipient{Auth: rk.Auth, BoxKey: *wire.BoxKey(&rk.DH, &priv)}
		clear(priv[:])
	}
	err := c.s.cfg.Store.Create(SenderKeyOf(ans.SndID), Chunk{Class: cmd.Class, SenderAuth: cmd.AuthKey}, rcpts)
	if err != nil {
		c.storeFailed(t, err)
		return
	}
	c.answer(t, wire.ClassControl, ans)
}

// storeFailed answers a store error.
func (c *conn) storeFailed(t *wire.FileTransmission, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		c.fail(t, wire.CodeAuth)
	case errors.Is(err, ErrQuota):
		c.fail(t, wire.CodeQuota)
	case errors.Is(err, ErrSize):
		c.fail(t, wire.CodeLarge)
	case errors.Is(err, ErrNotReady):
		c.fail(t, wire.CodeNoMsg)
	case errors.Is(err, ErrUploaded):
		c.fail(t, wire.CodeProhibited)
	case errors.Is(err, ErrCorrupt):
		c.s.log.Error("stored chunk failed its digest check")
		c.fail(t, wire.CodeInternal)
	default:
		c.s.log.Error("chunk store operation failed", "err", err)
		c.fail(t, wire.CodeInternal)
	}
}

// chunkOp takes a relay-wide slot for a command that holds a chunk in
// memory.
func (c *conn) chunkOp() bool {
	select {
	case c.s.chunkOps <- struct{}{}:
		return true
	case <-c.closing:
		return false
	}
}

// authorized answers the command unless the lookup found its record
// (lookupErr nil) and the signature verifies by key. A missing record is
// verified against the dummy key, so AUTH costs the same either way.
func (c *conn) authorized(t *wire.FileTransmission, lookupErr error, key []byte) bool {
	if lookupErr != nil && !errors.Is(lookupErr, ErrNotFound) {
		c.storeFailed(t, lookupErr)
		return false
	}
	if lookupErr != nil {
		key = c.s.dummyKey[:]
	}
	if ok := t.Verify(c.sess.ID, key); !ok || lookupErr != nil {
		c.fail(t, wire.CodeAuth)
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
	c.ok(t)
}

func (c *conn) recipientCommand(t *wire.FileTransmission) {
	rk := RecipientKeyOf(wire.ChunkID(t.EntityID))
	r, ch, err := c.s.cfg.Store.ByRecipient(rk)
	if !c.authorized(t, err, r.Auth[:]) {
		return
	}
	if t.Command.Kind == wire.CmdFACK {
		if err := c.s.cfg.Store.Ack(rk); err != nil {
			c.storeFailed(t, err)
			return
		}
		c.ok(t)
		return
	}
	if !ch.Uploaded {
		c.fail(t, wire.CodeNoMsg)
		return
	}
	if !c.chunkOp() {
		return
	}
	defer func() { <-c.s.chunkOps }()
	data, err := c.s.cfg.Store.Read(&ch)
	if err != nil {
		c.storeFailed(t, err)
		return
	}
	sealed, err := wire.SealChunk(&r.BoxKey, data)
	if err != nil {
		c.fail(t, wire.CodeInternal)
		return
	}
	c.answer(t, ch.Class, wire.FileCommand{Kind: wire.AnsCHUNK, Data: sealed})
}
