package files_test

import (
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// TestRelayDropsSilentClient: a client that never answers pings (it does
// not read) is dropped without a close handshake.
func TestRelayDropsSilentClient(t *testing.T) {
	r := startRelay(t, mib, func(c *files.Config) {
		c.Limits.PingInterval, c.Limits.PingTimeout = 30*time.Millisecond, 30*time.Millisecond
	})
	rw := dialRaw(t, r)
	// Not reading means not answering pings; wait for the relay to give
	// up on the session before reading its close frame.
	for deadline := time.Now().Add(scaled(20 * time.Second)); r.srv.Connections() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("silent client not dropped")
		}
	}
	var ce websocket.CloseError
	if _, _, err := rw.ws.Read(ctxT(t)); err == nil || errors.As(err, &ce) {
		t.Fatalf("read after the drop: %v", err)
	}
}

// TestClientKeepalive: an idle client with a short ping interval keeps
// its connection usable (its PINGs are well-formed and answered) while the
// relay pings it too.
func TestClientKeepalive(t *testing.T) {
	r := startRelay(t, mib, func(c *files.Config) {
		c.Limits.PingInterval, c.Limits.PingTimeout = 40*time.Millisecond, scaled(time.Second)
	})
	c, err := client.DialFiles(ctxT(t), r.addr, client.Options{PingInterval: 20 * time.Millisecond, PingTimeout: scaled(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(300 * time.Millisecond)
	if _, _, err := c.CreateChunk(ctxT(t), wire.Class64K, 1, nil); err != nil {
		t.Fatal(err)
	}
}
