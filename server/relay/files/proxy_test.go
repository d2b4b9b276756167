package files_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// TestProxyDownload: a recipient downloads and acknowledges chunks of
// every class on another relay through its own relay's file endpoint.
func TestProxyDownload(t *testing.T) {
	dest := startRelay(t, 1<<30, nil)
	proxy := startRelay(t, 1<<30, func(c *files.Config) {
		c.Password = []byte("pw")
		c.Proxy.AllowPrivate = true
	})
	snd := dial(t, dest)
	rcv := dial(t, proxy)
	ctx := ctxT(t)
	proof := client.Proof{Password: []byte("pw")}
	// Without a proof the proxy refuses, naming the proxy's AUTH.
	_, rcpts, _ := uploaded(t, snd, wire.Class64K, 1)
	for _, bad := range []client.Proof{{}, {Password: []byte("wrong")}} {
		_, err := rcv.ProxyDownload(ctx, dest.addr, rcpts[0], bad)
		var re *client.RouteError
		if !errors.As(err, &re) || re.AtDest || re.Code != wire.CodeAuth {
			t.Fatalf("proof %q: %v", bad.Password, err)
		}
	}
	var re *client.RouteError
	for _, class := range wire.Classes() {
		_, rcpts, data := uploaded(t, snd, class, 1)
		got, err := rcv.ProxyDownload(ctx, dest.addr, rcpts[0], proof)
		if err != nil {
			t.Fatalf("%s: %v", class, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: downloaded bytes differ", class)
		}
		if err := rcv.ProxyAck(ctx, dest.addr, rcpts[0], proof); err != nil {
			t.Fatalf("%s: ack: %v", class, err)
		}
		// The acknowledgement reached the destination: the recipient
		// ID is gone there.
		_, err = rcv.ProxyDownload(ctx, dest.addr, rcpts[0], proof)
		if !errors.As(err, &re) || !re.AtDest || !errors.Is(err, wire.CodeAuth) {
			t.Fatalf("%s: after FACK: %v", class, err)
		}
	}
	if err := rcv.ProxyAck(ctx, dest.addr, rcpts[0], proof); err != nil {
		t.Fatal(err)
	}
	expectEmpty(t, dest)
}
