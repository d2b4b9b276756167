package relay

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"

	"github.com/wisp-chat/wisp/server/wire"
)

// The destination's side of private routing (wire SPEC.md §12): a proxy
// asks for this session's forward key (RKEY) and then forwards commands
// sealed to it (RFWD). Any session may do so: every forwarded command is
// signed by its queue's sender key, exactly as if its client had come
// itself, and only SKEY and SEND can be forwarded.

// maxForwardsPerKey bounds the commands forwarded under one forward key,
// and so the memory of the replay check; past it the relay answers ROUTE
// and the proxy opens a new session.
const maxForwardsPerKey = 100_000

// forwardState is one session's forward key and the ephemeral keys of the
// commands forwarded under it (a repeat is refused).
type forwardState struct {
	priv  *ecdh.PrivateKey
	layer *[32]byte
	seen  map[[16]byte]struct{}
}

func (c *conn) destinationCommand(t *wire.Transmission) {
	if t.Signature != nil || len(t.EntityID) != 0 || len(t.CorrID) == 0 {
		c.fail(t, wire.CodeCmd)
		return
	}
	if t.Command.Kind == wire.CmdRKEY {
		c.forwardKey(t)
		return
	}
	c.forwarded(t)
}

// forwardKey answers RKEY: a fresh forward key for this session, signed
// by the relay's identity. A session has one; RKEY again is PROHIBITED.
func (c *conn) forwardKey(t *wire.Transmission) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		c.fail(t, wire.CodeInternal)
		return
	}
	var fwd [wire.KeySize]byte
	copy(fwd[:], priv.PublicKey().Bytes())
	layer, err := wire.LayerKey(priv, t.Command.DHKey, t.Command.DHKey, fwd)
	if err != nil {
		c.fail(t, wire.CodeCmd) // a low-order key
		return
	}
	c.mu.Lock()
	if c.fwd != nil {
		c.mu.Unlock()
		c.fail(t, wire.CodeProhibited)
		return
	}
	c.fwd = &forwardState{priv: priv, layer: layer, seen: make(map[[16]byte]struct{})}
	c.mu.Unlock()
	ans := wire.Command{Kind: wire.AnsFKEY, DHKey: fwd, KeySig: wire.SignForwardKey(c.s.cfg.Identity, fwd)}
	copy(ans.Identity[:], c.s.identityPub)
	c.answer(t, ans)
}

// forwarded runs one RFWD: it opens the proxy's layer and the client's
// sealing, runs SKEY or SEND, and seals the answer back the same way.
func (c *conn) forwarded(t *wire.Transmission) {
	c.mu.Lock()
	fs := c.fwd
	c.mu.Unlock()
	if fs == nil {
		c.fail(t, wire.CodeRoute)
		return
	}
	inner, err := wire.OpenLayer(fs.layer, t.Command.Body)
	if err != nil {
		c.fail(t, wire.CodeCmd) // the proxy's own layer: a broken proxy
		return
	}
	var eph [wire.KeySize]byte
	copy(eph[:], inner)
	f, err := wire.OpenForward(fs.priv, eph, inner[wire.KeySize:])
	if f == nil {
		// Not sealed to this key (one of an older session), or a
		// low-order ephemeral key: the client asks for a new route.
		c.fail(t, wire.CodeAuth)
		return
	}
	seen := sha256.Sum256(eph[:])
	var id [16]byte
	copy(id[:], seen[:])
	c.mu.Lock()
	_, dup := fs.seen[id]
	full := len(fs.seen) >= maxForwardsPerKey
	if !dup && !full {
		fs.seen[id] = struct{}{}
	}
	c.mu.Unlock()
	switch {
	case full:
		c.fail(t, wire.CodeRoute)
		return
	case dup:
		c.fail(t, wire.CodeProhibited) // a replayed command
		return
	}
	c.s.cfg.Metrics.forwardedIn()
	reply := func(a wire.Command) {
		if a.Kind == wire.AnsERR {
			c.s.cfg.Metrics.errored(a.Code)
		}
		sealed, err := f.SealAnswer(a)
		if err == nil {
			sealed, err = wire.SealLayer(rand.Reader, fs.layer, sealed)
		}
		if err != nil {
			c.fail(t, wire.CodeInternal)
			return
		}
		c.push(&wire.Transmission{CorrID: t.CorrID, Command: wire.Command{Kind: wire.AnsRRES, Body: sealed}}, 0)
	}
	ft := &f.T
	switch {
	case err != nil:
		code := wire.CodeBlock
		if errors.Is(err, wire.ErrCommand) {
			code = wire.CodeCmd
		} else if errors.Is(err, wire.ErrTooLarge) {
			code = wire.CodeLarge
		}
		reply(wire.Command{Kind: wire.AnsERR, Code: code})
	case ft.Command.Kind != wire.CmdSKEY && ft.Command.Kind != wire.CmdSEND,
		ft.Signature == nil, len(ft.EntityID) != wire.IDSize, len(ft.CorrID) == 0:
		reply(wire.Command{Kind: wire.AnsERR, Code: wire.CodeCmd})
	default:
		c.sender(ft, f.SessionID, func() {}, reply)
	}
}
