package client

import (
	"context"
	"errors"
	"io"
)

// MessageType is a WebSocket message's type; the relay protocol sends
// binary messages only.
type MessageType int

// MessageBinary is a binary message.
const MessageBinary MessageType = 2

// Close codes the client sends (RFC 6455 §7.4.1).
const (
	closeNormal = 1000
	closePolicy = 1008
)

// WebSocket is the connection a Client speaks over: coder/websocket
// natively, the browser's own WebSocket under GOOS=js, so that the
// browser core does not link net/http and TLS for a socket the browser
// already has.
type WebSocket interface {
	// Reader returns the next message.
	Reader(ctx context.Context) (MessageType, io.Reader, error)
	// Write sends b as one binary message.
	Write(ctx context.Context, b []byte) error
	// SetReadLimit bounds the size of a message; a longer one fails the
	// read and closes the connection.
	SetReadLimit(n int64)
	// Close sends a close frame with code and reason and waits for the
	// peer's; CloseNow drops the connection at once.
	Close(code int, reason string) error
	CloseNow() error
}

// errText is a text message where the protocol has binary ones only.
var errText = errors.New("client: text message")
