package files

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/wisp-chat/wisp/server/relay/internal/routes"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// Private routing of downloads (wire SPEC.md §12.6). As a proxy, the file
// endpoint forwards its own clients' FGET and FACK to the file endpoint
// of another relay (the one a file's sender chose), one session per
// destination for all clients, and streams the sealed chunk back without
// storing it. As a destination, it runs forwarded FGET and FACK exactly as
// direct ones. The proxy learns which relay its client downloads from,
// when, and the chunk class; never the chunk IDs or the bytes.

// ProxyConfig configures the file endpoint's proxy role; it is the
// queue endpoint's type (relay.ProxyConfig).
type ProxyConfig = routes.ProxyConfig

// forwardTimeout bounds one forwarded command (a 4 MiB chunk on a slow
// link included), the route's opening included.
const forwardTimeout = 2 * time.Minute

func newRoutes(s *Server) *routes.Table {
	p := &s.cfg.Proxy
	p.Defaults()
	opts := p.Client
	opts.Dial = routes.Dialer{AllowPrivate: p.AllowPrivate, Bind: p.Bind}.Dial()
	open := func(ctx context.Context, dest wire.Address, _ func()) (routes.Session, routes.Key, *[32]byte, error) {
		fc, err := client.DialFiles(ctx, dest, opts)
		if err != nil {
			return nil, routes.Key{}, nil, err
		}
		key, layer, err := routes.Handshake(ctx, fc.ForwardKey)
		if err != nil {
			_ = fc.Close()
			return nil, key, nil, err
		}
		// A reconnected file session has no forward key: the destination
		// answers ROUTE, which retires the route.
		return fc, key, layer, nil
	}
	return routes.New(s.pctx, routes.Config{MaxRoutes: p.MaxRoutes, Idle: p.IdleRoute, Timeout: forwardTimeout}, open)
}

// proxyCommand runs PRXY and PFWD for a client of this relay.
func (c *conn) proxyCommand(t *wire.FileTransmission) {
	k := t.Command.Kind
	signed := t.Signature != nil
	entity := len(t.EntityID) == wire.IDSize
	badEnvelope := len(t.CorrID) == 0 ||
		(k == wire.CmdFPFWD && (signed || !entity)) ||
		(k == wire.CmdFPRXY && signed != entity)
	if badEnvelope {
		c.fail(t, wire.CodeCmd)
		return
	}
	p := &c.s.cfg.Proxy
	if p.Off {
		c.fail(t, wire.CodeProhibited)
		return
	}
	if k == wire.CmdFPRXY && !c.prove(t) {
		c.fail(t, wire.CodeAuth)
		return
	}
	if !c.proven.Load() {
		c.fail(t, wire.CodeAuth)
		return
	}
	now := c.s.now()
	rate := c.pfwd
	if k == wire.CmdFPRXY {
		rate = c.prxy
	}
	if !rate.take(now) {
		c.fail(t, wire.CodeLimit)
		return
	}
	ctx, cancel := context.WithTimeout(c.s.pctx, forwardTimeout)
	defer cancel()
	if k == wire.CmdFPRXY {
		if t.Command.Fwd.Relay.KeyHash == wire.HashIdentity(c.s.identityPub) {
			c.fail(t, wire.CodeProhibited) // a relay is not its own proxy
			return
		}
		r, err := c.s.routes.Open(ctx, t.Command.Fwd.Relay)
		if err != nil {
			c.fail(t, routes.ErrCode(err))
			return
		}
		ans := wire.FileCommand{Kind: wire.AnsFPKEY}
		ans.Fwd = wire.Command{Route: r.ID, Identity: r.Key.Identity, DHKey: r.Key.Fwd, KeySig: r.Key.Sig}
		c.answer(t, wire.ClassControl, ans)
		return
	}
	r := c.s.routes.Lookup(t.EntityID)
	if r == nil {
		c.fail(t, wire.CodeRoute)
		return
	}
	class := t.Command.Class
	if class != wire.ClassControl {
		// The chunk passes through memory: it holds a download slot.
		if !c.chunkOp(c.s.getOps) {
			return
		}
		defer c.chunkDone(c.s.getOps)
	}
	res, err := c.s.routes.Forward(ctx, r, class, t.Command.Fwd.DHKey, t.Command.Data)
	if err != nil {
		c.fail(t, routes.ErrCode(err))
		return
	}
	c.answer(t, class, wire.FileCommand{Kind: wire.AnsFPRES, Data: res})
}

// prove checks PRXY's proof that the session is one of this relay's
// clients: the relay password, or a signature by the recipient key of a
// queue on this relay (Config.QueueKey). A wrong proof is false; no proof
// leaves the session as it was.
func (c *conn) prove(t *wire.FileTransmission) bool {
	if len(c.s.cfg.Password) > 0 && len(t.Command.Password) > 0 {
		pw := sha256.Sum256(t.Command.Password)
		if subtle.ConstantTimeCompare(pw[:], c.s.pwHash[:]) != 1 {
			return false
		}
		c.proven.Store(true)
	}
	if t.Signature == nil {
		return true
	}
	key := c.s.dummyKey
	found := false
	if c.s.cfg.QueueKey != nil {
		k, err := c.s.cfg.QueueKey(wire.QueueID(t.EntityID))
		if err == nil {
			key, found = k, true
		}
	}
	if !t.Verify(c.sess.ID, ed25519.PublicKey(key[:])) || !found {
		return false
	}
	c.proven.Store(true)
	return true
}

// destinationCommand runs RKEY and RFWD from a proxy.
func (c *conn) destinationCommand(t *wire.FileTransmission) {
	if t.Signature != nil || len(t.EntityID) != 0 || len(t.CorrID) == 0 {
		c.fail(t, wire.CodeCmd)
		return
	}
	if t.Command.Kind == wire.CmdFRKEY {
		d, err := routes.NewDestination(t.Command.Fwd.DHKey)
		if err != nil {
			c.fail(t, wire.CodeCmd)
			return
		}
		if !c.fwd.CompareAndSwap(nil, d) {
			c.fail(t, wire.CodeProhibited)
			return
		}
		ans := wire.FileCommand{Kind: wire.AnsFFKEY}
		ans.Fwd = wire.Command{DHKey: d.Pub, KeySig: wire.SignForwardKey(c.s.cfg.Identity, d.Pub)}
		copy(ans.Fwd.Identity[:], c.s.identityPub)
		c.answer(t, wire.ClassControl, ans)
		return
	}
	d := c.fwd.Load()
	if d == nil {
		c.fail(t, wire.CodeRoute)
		return
	}
	class := t.Command.Class
	eph, sealed, err := d.Unwrap(t.Command.Data)
	if err != nil {
		c.fail(t, wire.CodeCmd)
		return
	}
	f, err := wire.OpenFileForward(d.Priv, class, eph, sealed)
	if f == nil {
		c.fail(t, wire.CodeAuth)
		return
	}
	if code := d.Admit(eph); code != 0 {
		c.fail(t, code)
		return
	}
	reply := func(_ wire.ChunkClass, a wire.FileCommand) {
		sealed, err := f.SealFileAnswer(a)
		if errors.Is(err, wire.ErrTooLarge) {
			// A chunk the client did not ask room for (a wrong class).
			sealed, err = f.SealFileAnswer(wire.FileCommand{Kind: wire.AnsFERR, Code: wire.CodeLarge})
		}
		if err == nil {
			sealed, err = d.Wrap(sealed)
		}
		if err != nil {
			c.fail(t, wire.CodeInternal)
			return
		}
		c.answer(t, class, wire.FileCommand{Kind: wire.AnsFRRES, Data: sealed})
	}
	fail := func(code wire.ErrCode) { reply(wire.ClassControl, wire.FileCommand{Kind: wire.AnsFERR, Code: code}) }
	ft := &f.FT
	switch {
	case err != nil:
		fail(wire.CodeForParseError(err))
	case ft.Command.Kind != wire.CmdFGET && ft.Command.Kind != wire.CmdFACK,
		ft.Signature == nil, len(ft.EntityID) != wire.IDSize, len(ft.CorrID) == 0:
		fail(wire.CodeCmd)
	default:
		c.recipientCommand(ft, f.SessionID, reply)
	}
}
