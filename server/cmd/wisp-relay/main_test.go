package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// scaled stretches a test deadline by WISP_TEST_SCALE (a number ≥ 1,
// default 1; WISP_TEST_SLOW is another name for it), the one factor every
// deadline of these tests derives from, for slow or busy machines.
func scaled(d time.Duration) time.Duration {
	for _, name := range []string{"WISP_TEST_SCALE", "WISP_TEST_SLOW"} {
		if f, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && f >= 1 {
			return time.Duration(float64(d) * f)
		}
	}
	return d
}

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wisp-relay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	addr   wire.Address
	stdout *bufio.Reader
	stderr *bytes.Buffer
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stderr: new(bytes.Buffer)}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	p.stdout = bufio.NewReader(out)
	line, err := p.stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("no address line: %v; stderr: %s", err, p.stderr)
	}
	s, ok := strings.CutPrefix(line, "relay address: ")
	if !ok || !strings.HasSuffix(s, "\n") {
		t.Fatalf("bad first line %q", line)
	}
	if p.addr, err = wire.ParseAddress(strings.TrimSuffix(s, "\n")); err != nil {
		t.Fatal(err)
	}
	return p
}

// stop sends SIGTERM and checks a clean exit with nothing more on stdout.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(p.stdout)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, p.stderr)
		}
	case <-time.After(scaled(15 * time.Second)):
		t.Fatal("no exit after SIGTERM")
	}
	if len(rest) != 0 {
		t.Fatalf("more stdout after the address line: %q", rest)
	}
}

func TestRelayBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := build(t)
	dir := filepath.Join(t.TempDir(), "data")
	metrics := freePort(t)
	p := start(t, bin, "-listen", "127.0.0.1:0", "-data", dir, "-metrics", metrics)
	if p.addr.Host != "127.0.0.1" || p.addr.Port == 0 {
		t.Fatalf("address %s", p.addr)
	}
	st, err := os.Stat(filepath.Join(dir, "identity.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity key: %v %v", err, st)
	}

	ctx, cancel := context.WithTimeout(context.Background(), scaled(30*time.Second))
	defer cancel()
	c, err := client.Dial(ctx, p.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := client.NewRecipientKeys()
	q, err := c.New(ctx, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	if err := c.Secure(ctx, q.SndID, sk); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, q.SndID, sk, []byte("kept across restarts")); err != nil {
		t.Fatal(err)
	}
	// A SEND signed by another key than the queue's: one AUTH error.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if err := c.Send(ctx, q.SndID, other, []byte("not the sender")); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("SEND with the wrong key: %v", err)
	}

	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"wisp_relay_connections 1", "wisp_relay_sends_total 1", "wisp_relay_queues 1",
		"wisp_relay_messages_stored 1", "wisp_relay_queues_created_total 1", `wisp_relay_errors_total{code="AUTH"} 1`, `wisp_relay_errors_total{code="QUOTA"} 0`} {
		if !bytes.Contains(body, []byte(want+"\n")) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, id := range [][]byte{q.RcvID[:], q.SndID[:]} {
		if bytes.Contains(body, id) || bytes.Contains(body, []byte(hex.EncodeToString(id))) {
			t.Error("metrics contain a queue ID")
		}
	}
	_ = c.Close()
	p.stop(t)
	if strings.Contains(p.stderr.String(), "127.0.0.1:") {
		t.Errorf("log mentions an address: %s", p.stderr)
	}

	// Same identity and data after a restart.
	p2 := start(t, bin, "-listen", "127.0.0.1:0", "-data", dir)
	if p2.addr.KeyHash != p.addr.KeyHash {
		t.Fatal("identity changed across restarts")
	}
	c, err = client.Dial(ctx, p2.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, ok, err := c.Get(ctx, q.Subscription(keys))
	if err != nil || !ok || string(m.Body) != "kept across restarts" {
		t.Fatalf("after restart: %q %v %v", m.Body, ok, err)
	}
	p2.stop(t)
}

func TestRelayBinaryFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := build(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	_ = os.MkdirAll(bad, 0o700)
	_ = os.WriteFile(filepath.Join(bad, "identity.key"), []byte("short"), 0o600)
	for name, args := range map[string][]string{
		"no data dir":        {"-listen", "127.0.0.1:0"},
		"cert without key":   {"-data", dir, "-tls-cert", "x.pem"},
		"cert and acme":      {"-data", dir, "-tls-cert", "x", "-tls-key", "y", "-acme-domain", "a.example"},
		"missing cert files": {"-data", dir, "-listen", "127.0.0.1:0", "-tls-cert", "x", "-tls-key", "y"},
		"corrupt identity":   {"-data", bad},
		"bad listen address": {"-data", dir, "-listen", "256.0.0.1:1"},
	} {
		out, err := exec.Command(bin, args...).Output()
		if err == nil {
			t.Errorf("%s: exit 0", name)
		}
		if len(out) != 0 {
			t.Errorf("%s: printed %q", name, out)
		}
	}
}

// TestRelayBinaryTLS serves the endpoint over TLS with a certificate and
// key pair from files.
func TestRelayBinaryTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)

	p := start(t, build(t), "-listen", "127.0.0.1:0", "-data", filepath.Join(dir, "data"), "-tls-cert", certFile, "-tls-key", keyFile)
	pool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d%s", p.addr.Port, wire.EndpointPath))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A plain GET is not a WebSocket upgrade: the endpoint refuses it,
	// over a verified TLS connection.
	if resp.StatusCode != http.StatusUpgradeRequired || resp.TLS == nil {
		t.Fatalf("status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	p.stop(t)
}
