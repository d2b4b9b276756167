//go:build !js

package client

import (
	"context"
	"io"

	"github.com/coder/websocket"
)

// FromWebSocket wraps a coder/websocket connection, for an Options.Dial
// that opens connections itself (a relay acting as a proxy binds and
// screens them).
func FromWebSocket(c *websocket.Conn) WebSocket { return nativeWS{c} }

type nativeWS struct{ c *websocket.Conn }

func (w nativeWS) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	typ, r, err := w.c.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	if typ != websocket.MessageBinary {
		return 0, nil, errText
	}
	return MessageBinary, r, nil
}

func (w nativeWS) Write(ctx context.Context, b []byte) error {
	return w.c.Write(ctx, websocket.MessageBinary, b)
}

func (w nativeWS) SetReadLimit(n int64) { w.c.SetReadLimit(n) }

func (w nativeWS) Close(code int, reason string) error {
	return w.c.Close(websocket.StatusCode(code), reason)
}

func (w nativeWS) CloseNow() error { return w.c.CloseNow() }

func dialWebSocket(ctx context.Context, url string) (WebSocket, error) {
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	return nativeWS{c}, nil
}
