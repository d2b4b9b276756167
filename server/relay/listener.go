package relay

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ListenerConfig configures LimitListener.
type ListenerConfig struct {
	// MaxConns bounds the accepted connections open at once: WebSocket
	// sessions of both endpoints, plain HTTP requests and connections
	// that have not sent anything yet all count.
	MaxConns int
	// TLS, if set, is the configuration of the tls.Listener that wraps
	// this one: a refused connection gets its 503 over TLS.
	TLS *tls.Config
	// RefuseTimeout bounds the refusal of a connection: the TLS
	// handshake, reading the request's headers and writing the 503 [3s].
	RefuseTimeout time.Duration
	// Logger gets at most one line a minute while connections are being
	// refused (a count, never an address) [slog.Default()].
	Logger *slog.Logger
}

// maxRefusing bounds the refused connections being answered at once;
// beyond it, a refused connection is closed without an answer.
const maxRefusing = 16

// Listener is a net.Listener that keeps at most MaxConns accepted
// connections open. A connection accepted over the limit does not wait:
// its request is answered at once with HTTP 503 "too many connections"
// and it is closed, so an honest client fails fast and clearly and
// retries later (while 16 refusals are already under way, it is closed
// without an answer). Put it under the tls.Listener (it counts TCP
// connections) and let the http.Server's timeouts close idle
// connections, so that a flood of idle connections holds its slots only
// for those timeouts. A Listener holds at most MaxConns + 16 descriptors
// for connections.
type Listener struct {
	net.Listener
	cfg      ListenerConfig
	open     atomic.Int64
	refusing chan struct{}

	logMu   sync.Mutex
	refused int // since the last log line
	logged  time.Time
}

// LimitListener wraps ln; see Listener.
func LimitListener(ln net.Listener, cfg ListenerConfig) *Listener {
	if cfg.MaxConns < 1 {
		cfg.MaxConns = 1
	}
	if cfg.RefuseTimeout <= 0 {
		cfg.RefuseTimeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Listener{Listener: ln, cfg: cfg, refusing: make(chan struct{}, maxRefusing)}
}

// Open returns the number of accepted connections not yet closed.
func (l *Listener) Open() int { return int(l.open.Load()) }

// Accept returns the next connection within the limit, refusing those
// over it.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= int64(l.cfg.MaxConns) {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refuse(c)
	}
}

func (l *Listener) refuse(c net.Conn) {
	l.logRefused()
	select {
	case l.refusing <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		refuse(c, l.cfg.TLS, l.cfg.RefuseTimeout)
	}()
}

func (l *Listener) logRefused() {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	l.refused++
	if now := time.Now(); now.Sub(l.logged) >= time.Minute {
		l.cfg.Logger.Warn("connection limit reached: refusing connections", "max_conns", l.cfg.MaxConns, "refused", l.refused)
		l.refused, l.logged = 0, now
	}
}

const refusal = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 21\r\n\r\n" +
	"too many connections\n"

// refuseDrain is how long a refusal reads what the client sends after the
// answer, so that closing does not reset the connection (and discard the
// answer) while more of the client's bytes arrive.
const refuseDrain = 250 * time.Millisecond

// refuse reads the request's headers (clients such as Go's net/http treat
// an answer before their request as an error), answers 503 and closes c.
// A client that sends no request within the timeout is closed without
// an answer.
func refuse(c net.Conn, cfg *tls.Config, timeout time.Duration) {
	if cfg != nil {
		c = tls.Server(c, cfg)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if !readHeaders(bufio.NewReaderSize(io.LimitReader(c, 8<<10), 1<<10)) {
		return
	}
	if _, err := io.WriteString(c, refusal); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(min(timeout, refuseDrain)))
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

// readHeaders reads lines up to the empty one that ends an HTTP request's
// headers; it reports false if they do not end.
func readHeaders(r *bufio.Reader) bool {
	for continued := false; ; {
		line, err := r.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			continued = true // a long line: its rest follows
		case err != nil:
			return false
		case !continued && (string(line) == "\r\n" || string(line) == "\n"):
			return true
		default:
			continued = false
		}
	}
}

// limitedConn gives its slot back when closed.
type limitedConn struct {
	net.Conn
	l      *Listener
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
	}
	return err
}

// CloseWrite lets net/http half-close a plain TCP connection as it does
// without the wrapper.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
