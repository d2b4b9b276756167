package client

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/wisp-chat/wisp/server/wire"
)

// Private routing of downloads (wire SPEC.md §12.6): a recipient fetches
// and acknowledges chunks on a relay it did not choose (the sender's)
// through the file endpoint of its own relay, which never learns the
// chunk IDs; the sender's relay never learns the recipient's address:
//
//	fc, _ := client.DialFiles(ctx, ownRelay, client.Options{})
//	proof := client.Proof{Queue: &sub}              // a queue we hold on ownRelay
//	data, err := fc.ProxyDownload(ctx, dest, rcpt, proof)  // FGET, forwarded
//	err = fc.ProxyAck(ctx, dest, rcpt, proof)              // FACK, forwarded
//
// Errors are *RouteError, as for Client.ProxySend.

// Proof shows a proxy's file endpoint that the client is one of the
// relay's own clients: a queue it holds there (PRXY is then signed by the
// queue's recipient key, entity = its recipient ID), or the relay's
// password.
type Proof struct {
	Queue    *Subscription
	Password []byte
}

// ProxyDownload fetches a chunk from dest through this relay (FGET,
// forwarded) and opens the destination's re-encryption, as Download does.
func (c *FileClient) ProxyDownload(ctx context.Context, dest wire.Address, r RecipientChunk, proof Proof) ([]byte, error) {
	t := &wire.FileTransmission{EntityID: r.RcvID[:], Command: wire.FileCommand{Kind: wire.CmdFGET}}
	ans, err := c.forward(ctx, dest, r.Class, t, r.Key, proof)
	if err != nil {
		return nil, err
	}
	if ans.Kind != wire.AnsCHUNK {
		return nil, &RouteError{Proxy: c.addr, Dest: dest, AtDest: true, Err: fmt.Errorf("%w: %s", ErrUnexpected, ans.Kind)}
	}
	data, err := wire.OpenChunk(&r.BoxKey, ans.Data)
	if err != nil {
		return nil, err
	}
	if len(data) != r.Class.Size() {
		return nil, fmt.Errorf("%w: %d bytes for a %s chunk", ErrUnexpected, len(data), r.Class)
	}
	return data, nil
}

// ProxyAck acknowledges a chunk on dest through this relay (FACK,
// forwarded).
func (c *FileClient) ProxyAck(ctx context.Context, dest wire.Address, r RecipientChunk, proof Proof) error {
	t := &wire.FileTransmission{EntityID: r.RcvID[:], Command: wire.FileCommand{Kind: wire.CmdFACK}}
	ans, err := c.forward(ctx, dest, wire.ClassControl, t, r.Key, proof)
	if err != nil {
		return err
	}
	if ans.Kind != wire.AnsFOK {
		return &RouteError{Proxy: c.addr, Dest: dest, AtDest: true, Err: fmt.Errorf("%w: %s", ErrUnexpected, ans.Kind)}
	}
	return nil
}

func (c *FileClient) forward(ctx context.Context, dest wire.Address, class wire.ChunkClass, t *wire.FileTransmission, key ed25519.PrivateKey, proof Proof) (wire.FileCommand, error) {
	if dest.KeyHash == c.addr.KeyHash {
		return wire.FileCommand{}, &RouteError{Proxy: c.addr, Dest: dest, Err: fmt.Errorf("%w: a relay is not its own proxy", ErrRoute)}
	}
	corr := make([]byte, 8)
	_, _ = rand.Read(corr)
	t.CorrID = corr
	for attempt := 0; ; attempt++ {
		r, err := c.route(ctx, dest, proof)
		if err != nil {
			return wire.FileCommand{}, err
		}
		ans, gone, err := c.forwardOnce(ctx, dest, r, class, t, key)
		if gone {
			c.routes.drop(dest, r)
			if attempt == 0 {
				continue
			}
		}
		if err != nil {
			return ans, err
		}
		if ans.Kind == wire.AnsFERR {
			return ans, &RouteError{Proxy: c.addr, Dest: dest, AtDest: true, Err: ans.Code}
		}
		return ans, nil
	}
}

func (c *FileClient) forwardOnce(ctx context.Context, dest wire.Address, r route, class wire.ChunkClass, t *wire.FileTransmission, key ed25519.PrivateKey) (ans wire.FileCommand, gone bool, err error) {
	f, err := wire.NewFileForward(rand.Reader, r.fwd, class, t, key)
	if err != nil {
		return ans, false, err
	}
	cmd := wire.FileCommand{Kind: wire.CmdFPFWD, Class: class, Data: f.Sealed}
	cmd.Fwd.DHKey = f.Eph
	res, err := c.do(ctx, wire.ClassControl, &wire.FileTransmission{EntityID: r.id[:], Command: cmd}, nil, wire.AnsFPRES)
	if err != nil {
		return ans, routeGone(err), routeError(c.addr, dest, err)
	}
	ans, err = f.OpenFileAnswer(res.Data)
	if err != nil {
		// As for Client.forwardOnce: dropped, not sent again here.
		c.routes.drop(dest, r)
		return ans, false, &RouteError{Proxy: c.addr, Dest: dest, Err: fmt.Errorf("%w: %w", ErrRoute, err)}
	}
	return ans, false, nil
}

// route returns the cached route to dest or asks the proxy for one.
func (c *FileClient) route(ctx context.Context, dest wire.Address, proof Proof) (route, error) {
	return c.routes.resolve(ctx, dest, func() (route, error) {
		cmd := wire.FileCommand{Kind: wire.CmdFPRXY, Password: proof.Password}
		cmd.Fwd.Relay = dest
		t := &wire.FileTransmission{Command: cmd}
		var key ed25519.PrivateKey
		if proof.Queue != nil {
			t.EntityID, key = proof.Queue.RcvID[:], proof.Queue.Auth
		}
		ans, err := c.do(ctx, wire.ClassControl, t, key, wire.AnsFPKEY)
		if err != nil {
			return route{}, routeError(c.addr, dest, err)
		}
		if err := wire.VerifyForwardKey(dest.KeyHash, ans.Fwd.Identity, ans.Fwd.DHKey, ans.Fwd.KeySig); err != nil {
			return route{}, &RouteError{Proxy: c.addr, Dest: dest, Err: fmt.Errorf("%w: %w", ErrRoute, err)}
		}
		return route{id: ans.Fwd.Route, fwd: ans.Fwd.DHKey}, nil
	})
}

// routeGone reports a proxy's answer after which the route is asked for
// again: ROUTE (its session to the destination ended) or AUTH (the
// destination could not open the command, or this session has not shown
// it is the relay's client yet).
func routeGone(err error) bool {
	var code wire.ErrCode
	return errors.As(err, &code) && (code == wire.CodeRoute || code == wire.CodeAuth)
}

// routeError is the RouteError of a proxy's answer or of a failure on
// the way to it.
func routeError(proxy, dest wire.Address, err error) *RouteError {
	var code wire.ErrCode
	if errors.As(err, &code) {
		return &RouteError{Proxy: proxy, Dest: dest, Code: code, Err: fmt.Errorf("%w: %s", ErrRoute, code)}
	}
	return &RouteError{Proxy: proxy, Dest: dest, Err: fmt.Errorf("%w: %w", ErrRoute, err)}
}

// ForwardKey asks a destination's file endpoint for this session's
// forward key (RKEY → FKEY): the proxy side of private routing.
func (c *FileClient) ForwardKey(ctx context.Context, eph *ecdh.PrivateKey) (identity, fwd [wire.KeySize]byte, sig [wire.SignatureSize]byte, err error) {
	cmd := wire.FileCommand{Kind: wire.CmdFRKEY}
	copy(cmd.Fwd.DHKey[:], eph.PublicKey().Bytes())
	ans, err := c.do(ctx, wire.ClassControl, &wire.FileTransmission{Command: cmd}, nil, wire.AnsFFKEY)
	if err != nil {
		return identity, fwd, sig, err
	}
	k := ans.Fwd
	if err := wire.VerifyForwardKey(c.addr.KeyHash, k.Identity, k.DHKey, k.KeySig); err != nil {
		return identity, fwd, sig, err
	}
	return k.Identity, k.DHKey, k.KeySig, nil
}

// Relay sends one forwarded file command to a destination (RFWD) whose
// answer is of the class, and returns RRES's data.
func (c *FileClient) Relay(ctx context.Context, class wire.ChunkClass, layered []byte) ([]byte, error) {
	ans, err := c.do(ctx, wire.ClassControl, &wire.FileTransmission{Command: wire.FileCommand{Kind: wire.CmdFRFWD, Class: class, Data: layered}}, nil, wire.AnsFRRES)
	if err != nil {
		return nil, err
	}
	return ans.Data, nil
}
