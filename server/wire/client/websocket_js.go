//go:build js

package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall/js"
	"time"
)

// jsWS is the browser's WebSocket. Messages arrive on the JavaScript
// event loop and wait in a queue for Reader; a message longer than the
// read limit, or a text message, ends the connection.
type jsWS struct {
	ws    js.Value
	funcs []listener

	mu     sync.Mutex
	queue  [][]byte
	limit  int64
	err    error         // why the connection ended, once it did
	wake   chan struct{} // a message or the end arrived
	closed chan struct{} // the close event fired
	once   sync.Once
}

type listener struct {
	event string
	fn    js.Func
}

// errClosed wraps how a connection ended.
var errClosed = errors.New("client: websocket closed")

func dialWebSocket(ctx context.Context, url string) (w WebSocket, err error) {
	defer func() {
		if r := recover(); r != nil {
			// new WebSocket throws for a malformed URL.
			w, err = nil, fmt.Errorf("client: websocket: %v", r)
		}
	}()
	c := &jsWS{wake: make(chan struct{}, 1), closed: make(chan struct{}), limit: 1 << 20}
	c.ws = js.Global().Get("WebSocket").New(url)
	c.ws.Set("binaryType", "arraybuffer")
	opened := make(chan struct{})
	var openOnce sync.Once
	c.on("open", func(js.Value) { openOnce.Do(func() { close(opened) }) })
	c.on("message", c.message)
	c.on("close", func(ev js.Value) {
		c.end(fmt.Errorf("%w (code %d)", errClosed, ev.Get("code").Int()))
		c.once.Do(func() { close(c.closed) })
		c.release()
	})
	select {
	case <-opened:
		return c, nil
	case <-c.closed:
		return nil, c.failure()
	case <-ctx.Done():
		c.ws.Call("close")
		return nil, ctx.Err()
	}
}

func (c *jsWS) on(event string, fn func(js.Value)) {
	f := js.FuncOf(func(_ js.Value, args []js.Value) any {
		fn(args[0])
		return nil
	})
	c.funcs = append(c.funcs, listener{event, f})
	c.ws.Call("addEventListener", event, f)
}

// release frees the event callbacks once the socket is closed.
func (c *jsWS) release() {
	for _, l := range c.funcs {
		c.ws.Call("removeEventListener", l.event, l.fn)
		l.fn.Release()
	}
	c.funcs = nil
}

func (c *jsWS) message(ev js.Value) {
	data := ev.Get("data")
	if data.Type() == js.TypeString {
		c.fail(errText)
		return
	}
	n := data.Get("byteLength").Int()
	c.mu.Lock()
	tooBig := int64(n) > c.limit
	c.mu.Unlock()
	if tooBig {
		c.fail(fmt.Errorf("client: message of %d bytes is over the read limit", n))
		return
	}
	b := make([]byte, n)
	js.CopyBytesToGo(b, js.Global().Get("Uint8Array").New(data))
	c.mu.Lock()
	if c.err == nil {
		c.queue = append(c.queue, b)
	}
	c.mu.Unlock()
	c.notify()
}

func (c *jsWS) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// end records why the connection ended (the first reason wins).
func (c *jsWS) end(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.notify()
}

// fail ends the connection for a protocol error of the peer.
func (c *jsWS) fail(err error) {
	c.end(err)
	c.ws.Call("close", 1000, "protocol error")
}

func (c *jsWS) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *jsWS) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			b := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return MessageBinary, bytes.NewReader(b), nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return 0, nil, err
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
}

func (c *jsWS) Write(ctx context.Context, b []byte) error {
	if err := c.failure(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	u8 := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(u8, b)
	c.ws.Call("send", u8)
	return nil
}

func (c *jsWS) SetReadLimit(n int64) {
	c.mu.Lock()
	c.limit = n
	c.mu.Unlock()
}

// Close closes with code (browsers accept only 1000 and 3000–4999 from
// a page; other codes close as 1000) and waits up to five seconds for
// the close to complete.
func (c *jsWS) Close(code int, reason string) error {
	if code != 1000 && (code < 3000 || code > 4999) {
		code = 1000
	}
	c.end(errClosed)
	c.ws.Call("close", code, reason)
	select {
	case <-c.closed:
	case <-time.After(5 * time.Second):
	}
	return nil
}

func (c *jsWS) CloseNow() error {
	c.end(errClosed)
	c.ws.Call("close")
	return nil
}
