package relay_test

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/relay"
)

// limited starts a LimitListener on loopback whose accepted connections
// are handed to the test on the returned channel (and otherwise held).
func limited(t *testing.T, cfg relay.ListenerConfig) (*relay.Listener, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := relay.LimitListener(ln, cfg)
	accepted := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	return l, accepted
}

func waitOpen(t *testing.T, l *relay.Listener, n int) {
	t.Helper()
	deadline := time.Now().Add(scaled(30 * time.Second))
	for l.Open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Open() = %d, want %d", l.Open(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// refusedWith503 sends a request (with the extra header lines) on c and
// checks the answer is a 503 followed by the end of the connection.
func refusedWith503(t *testing.T, c net.Conn, extra ...string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(scaled(30 * time.Second)))
	req := "GET /wisp HTTP/1.1\r\nHost: relay\r\n" + strings.Join(extra, "") + "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a refused connection: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "too many connections") {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("refused connection still open: %d %v", n, err)
	}
}

// TestLimitListener: connections past MaxConns get a 503 at once, and a
// slot is free again when a connection closes.
func TestLimitListener(t *testing.T) {
	l, accepted := limited(t, relay.ListenerConfig{MaxConns: 2})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, <-accepted)
	}
	if l.Open() != 2 {
		t.Fatalf("Open() = %d", l.Open())
	}
	over, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	refusedWith503(t, over)
	// A request with a header line longer than the refusal's buffer.
	over2, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer over2.Close()
	refusedWith503(t, over2, "User-Agent: "+strings.Repeat("x", 3000)+"\r\n", "Cookie: c=1\r\n")
	select {
	case <-accepted:
		t.Fatal("a connection over the limit was accepted")
	default:
	}

	// Closing twice gives one slot back.
	_ = held[0].Close()
	_ = held[0].Close()
	waitOpen(t, l, 1)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-accepted
	waitOpen(t, l, 2)
	_ = held[1].Close()
	waitOpen(t, l, 1)
}

// TestLimitListenerRefusingBound: at most 16 refused connections are
// being answered at once; past that, one is closed without an answer.
func TestLimitListenerRefusingBound(t *testing.T) {
	// Refused connections that never start their TLS handshake keep
	// their refusal busy until RefuseTimeout.
	l, accepted := limited(t, relay.ListenerConfig{MaxConns: 1, TLS: &tls.Config{}, RefuseTimeout: time.Minute})
	for i := range 17 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i == 0 {
			<-accepted
		}
	}
	// Accept is sequential: the 18th is handled after the 16 refusals
	// have started.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(scaled(30 * time.Second)))
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
		t.Fatalf("18th connection: %q, %v; want closed at once", b, err)
	}
}

// TestLimitListenerTLS: under a tls.Listener, a refused connection gets
// its 503 over TLS.
func TestLimitListenerTLS(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"relay.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}}
	l, accepted := limited(t, relay.ListenerConfig{MaxConns: 1, TLS: cfg})
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ccfg := &tls.Config{RootCAs: pool, ServerName: "relay.test"}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-accepted
	over, err := tls.Dial("tcp", l.Addr().String(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	refusedWith503(t, over)
}
