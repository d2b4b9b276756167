//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/coder/websocket"
)

// wsSink starts a loopback WebSocket server for the baseline of the file
// benchmarks: it reads binary messages until a text "down N" arrives,
// answers "up done" when the text "up" arrives, and then sends N binary
// messages of the size of the last message it received.
func wsSink(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(64 << 20)
		ctx := r.Context()
		var last []byte
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if typ == websocket.MessageBinary {
				last = b
				continue
			}
			var n int
			if string(b) == "up" {
				err = c.Write(ctx, websocket.MessageText, []byte("up done"))
			} else if _, serr := fmt.Sscanf(string(b), "down %d", &n); serr == nil {
				for range n {
					if err = c.Write(ctx, websocket.MessageBinary, last); err != nil {
						break
					}
				}
			}
			if err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Shutdown(context.Background()) })
	return "ws://" + ln.Addr().String()
}

// browserWebSocketMBps sends size bytes from p's page to a loopback
// WebSocket server in 4 MiB messages and receives them back, timed in the
// page: the raw browser WebSocket figure a file transfer (one upload, one
// download) is compared with.
func browserWebSocketMBps(tb testing.TB, p *tab, size int) float64 {
	tb.Helper()
	url := wsSink(tb)
	return eval[float64](p, fmt.Sprintf(`(async () => {
		const n = %d, msg = new Uint8Array(4 << 20);
		for (let i = 0; i < msg.length; i += 65536) crypto.getRandomValues(msg.subarray(i, i + 65536));
		const ws = new WebSocket(%q);
		ws.binaryType = "arraybuffer";
		await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
		let got = 0, done;
		const finished = new Promise((ok) => { done = ok; });
		ws.onmessage = (e) => { if (typeof e.data === "string" || ++got === n) done(); };
		const t0 = performance.now();
		for (let i = 0; i < n; i++) ws.send(msg);
		ws.send("up");
		await finished;
		const next = new Promise((ok) => { done = ok; });
		ws.send("down " + n);
		await next;
		const secs = (performance.now() - t0) / 1000;
		ws.close();
		return n * msg.length / 1e6 / secs;
	})()`, (size+(4<<20)-1)/(4<<20), url))
}
