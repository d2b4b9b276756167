// Package handshake runs the relay's side of the session handshake
// (server/wire SPEC.md, "Handshake") for both of the relay's servers, the
// queue endpoint and the file endpoint:
//
//	sess, ok := handshake.Relay{
//		Identity: id,
//		Read:     c.read,                      // closes the connection itself on failure
//		Write:    func(ctx context.Context, b []byte) error { return ws.Write(ctx, websocket.MessageBinary, b) },
//		Close:    c.closeWith,                 // how a failed handshake ends the connection
//	}.Run(ctx)
//
// On failure the connection is closed with a policy violation naming the
// step ("bad client hello", "unsupported version", "bad handshake
// confirmation") or an internal error ("write failed"); Run reports false.
package handshake

import (
	"context"
	"crypto/ed25519"
	"errors"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/wire"
)

// Relay is one connection's side of the handshake.
type Relay struct {
	Identity ed25519.PrivateKey
	// Read returns the next message; false means it failed and has
	// closed the connection itself.
	Read func(ctx context.Context) ([]byte, bool)
	// Write sends one binary message.
	Write func(ctx context.Context, b []byte) error
	// Close ends the connection after a failed step.
	Close func(code websocket.StatusCode, reason string)
}

// Run reads the client hello, answers it, reads the confirmation and
// returns the session, or closes the connection and returns false.
func (r Relay) Run(ctx context.Context) (*wire.Session, bool) {
	b, ok := r.Read(ctx)
	if !ok {
		return nil, false
	}
	hello, err := wire.ParseClientHello(b)
	if err != nil {
		r.Close(websocket.StatusPolicyViolation, "bad client hello")
		return nil, false
	}
	// The signature and key agreement need deep stacks; doing them on a
	// short-lived goroutine keeps the connection's long-lived one small,
	// which matters for tens of thousands of idle connections.
	var pending *wire.PendingSession
	var resp []byte
	onFreshStack(func() {
		pending, resp, err = wire.RelayRespond(r.Identity, wire.SupportedVersions(), hello)
	})
	if err != nil {
		r.Close(websocket.StatusPolicyViolation, "bad client hello")
		return nil, false
	}
	if err := r.Write(ctx, resp); err != nil {
		r.Close(websocket.StatusInternalError, "write failed")
		return nil, false
	}
	if b, ok = r.Read(ctx); !ok {
		return nil, false
	}
	if len(b) != wire.BlockSize {
		r.Close(websocket.StatusPolicyViolation, "bad handshake confirmation")
		return nil, false
	}
	var sess *wire.Session
	onFreshStack(func() { sess, err = pending.Confirm(b) })
	switch {
	case errors.Is(err, wire.ErrVersion):
		r.Close(websocket.StatusPolicyViolation, "unsupported version")
		return nil, false
	case err != nil:
		r.Close(websocket.StatusPolicyViolation, "bad handshake confirmation")
		return nil, false
	}
	return sess, true
}

// onFreshStack runs f on a new goroutine and waits for it.
func onFreshStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

// ReadBlock reads the next message of a queue session, or a handshake
// block of either endpoint: one binary message of wire.BlockSize bytes.
// Anything else ends the connection through fail with the reasons of
// SPEC §1 ("block size must be 16384", "binary blocks only"; a longer
// message is not read past one block); a read error (the peer went away)
// through fail with "read failed". It reports false then.
func ReadBlock(ctx context.Context, ws *websocket.Conn, fail func(code websocket.StatusCode, reason string)) ([]byte, bool) {
	typ, b, err := wire.ReadBlock(ctx, ws)
	switch {
	case errors.Is(err, wire.ErrBlockSize) || websocket.CloseStatus(err) == websocket.StatusMessageTooBig:
		// coder/websocket enforces the read limit itself and may already
		// have sent its own close frame (status 1009).
		fail(websocket.StatusPolicyViolation, "block size must be 16384")
	case err != nil:
		fail(websocket.StatusPolicyViolation, "read failed")
	case typ != websocket.MessageBinary:
		fail(websocket.StatusUnsupportedData, "binary blocks only")
	case len(b) != wire.BlockSize:
		fail(websocket.StatusPolicyViolation, "block size must be 16384")
	default:
		return b, true
	}
	return nil, false
}
