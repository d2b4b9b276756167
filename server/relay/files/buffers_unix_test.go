//go:build unix

package files_test

import (
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/coder/websocket"
)

// setBuffer sets a socket buffer size (which also turns off its
// automatic growth).
func setBuffer(rc syscall.RawConn, opt, n int) error {
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, n) }); err != nil {
		return err
	}
	return serr
}

// smallSendBuffers gives the relay's accepted connections a 32 KiB send
// buffer, so that what a client that does not read can have in flight
// does not depend on the system's buffer settings (which can let a socket
// take megabytes).
func smallSendBuffers(l net.Listener) net.Listener { return sendBufListener{l} }

type sendBufListener struct{ net.Listener }

func (l sendBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err == nil {
		err = setBuffer(rc, syscall.SO_SNDBUF, 32<<10)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// dialRawSmallWindow is dialRaw over a socket with a 4 KiB receive buffer.
// With the relay's small send buffers, its first 1 MiB frame to a client
// that does not read blocks at once, whatever the system's buffer
// settings.
func dialRawSmallWindow(t *testing.T, r *testRelay) *raw {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error { return setBuffer(rc, syscall.SO_RCVBUF, 4096) }}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	ctx := ctxT(t)
	ws, _, err := websocket.Dial(ctx, r.addr.FilesURL(), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return handshakeRaw(t, ws, r)
}
