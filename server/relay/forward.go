package relay

import (
	"github.com/wisp-chat/wisp/server/relay/internal/routes"
	"github.com/wisp-chat/wisp/server/wire"
)

// The destination's side of private routing (wire SPEC.md §12): a proxy
// asks for this session's forward key (RKEY) and then forwards commands
// sealed to it (RFWD). Any session may do so: every forwarded command is
// signed by its queue's sender key, exactly as if its client had come
// itself, and only SKEY and SEND can be forwarded.

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
	d, err := routes.NewDestination(t.Command.DHKey)
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
	c.fwd = d
	c.mu.Unlock()
	ans := wire.Command{Kind: wire.AnsFKEY, DHKey: d.Pub, KeySig: wire.SignForwardKey(c.s.cfg.Identity, d.Pub)}
	copy(ans.Identity[:], c.s.identityPub)
	c.answer(t, ans)
}

// forwarded runs one RFWD: it opens the proxy's layer and the client's
// sealing, runs SKEY or SEND, and seals the answer back the same way.
func (c *conn) forwarded(t *wire.Transmission) {
	c.mu.Lock()
	d := c.fwd
	c.mu.Unlock()
	if d == nil {
		c.fail(t, wire.CodeRoute)
		return
	}
	eph, sealed, err := d.Unwrap(t.Command.Body)
	if err != nil {
		c.fail(t, wire.CodeCmd) // the proxy's own layer: a broken proxy
		return
	}
	f, err := wire.OpenForward(d.Priv, eph, sealed)
	if f == nil {
		// Not sealed to this key (one of an older session), or a
		// low-order ephemeral key: the client asks for a new route.
		c.fail(t, wire.CodeAuth)
		return
	}
	if code := d.Admit(eph); code != 0 {
		c.fail(t, code)
		return
	}
	c.s.cfg.Metrics.forwardedIn()
	reply := func(a wire.Command) {
		if a.Kind == wire.AnsERR {
			c.s.cfg.Metrics.errored(a.Code)
		}
		sealed, err := f.SealAnswer(a)
		if err == nil {
			sealed, err = d.Wrap(sealed)
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
		reply(wire.Command{Kind: wire.AnsERR, Code: wire.CodeForParseError(err)})
	case ft.Command.Kind != wire.CmdSKEY && ft.Command.Kind != wire.CmdSEND,
		ft.Signature == nil, len(ft.EntityID) != wire.IDSize, len(ft.CorrID) == 0:
		reply(wire.Command{Kind: wire.AnsERR, Code: wire.CodeCmd})
	default:
		c.sender(ft, f.SessionID, func() {}, reply)
	}
}
