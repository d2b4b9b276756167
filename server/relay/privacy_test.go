package relay_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"golang.org/x/crypto/nacl/box"
)

// proxy forwards TCP connections to the relay, records every byte in both
// directions, and can cut all connections.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	seen   []*bytes.Buffer // one per direction of each connection
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	return p
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	rec := new(bytes.Buffer)
	p.mu.Lock()
	p.seen = append(p.seen, rec)
	p.mu.Unlock()
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			rec.Write(buf[:n])
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close()
			return
		}
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// captured returns the WebSocket payloads seen in both directions,
// unmasked, so that searching them is meaningful.
func (p *proxy) captured(t *testing.T) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, rec := range p.seen {
		out = append(out, wsPayloads(t, rec.Bytes())...)
	}
	return out
}

// wsPayloads skips the HTTP upgrade and returns the frame payloads of one
// direction of a WebSocket connection, unmasked (RFC 6455 §5.2).
func wsPayloads(t *testing.T, b []byte) []byte {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return nil
	}
	b = b[i+4:]
	var out []byte
	for len(b) >= 2 {
		masked := b[1]&0x80 != 0
		n := int(b[1] & 0x7f)
		h := 2
		switch n {
		case 126:
			n, h = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			n, h = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		var mask []byte
		if masked {
			mask = b[h : h+4]
			h += 4
		}
		if len(b) < h+n {
			t.Logf("capture ends inside a frame")
			break
		}
		payload := bytes.Clone(b[h : h+n])
		for j := range payload {
			if masked {
				payload[j] ^= mask[j%4]
			}
		}
		out = append(out, payload...)
		b = b[h+n:]
	}
	return out
}

func (p *proxy) address(r *testRelay) wire.Address {
	_, port, _ := net.SplitHostPort(p.ln.Addr().String())
	n, _ := strconv.Atoi(port)
	a := r.addr
	a.Port = uint16(n)
	return a
}

func TestPrivacyOnDiskAndOnWire(t *testing.T) {
	r := startRelay(t, nil)
	p := startProxy(t, net.JoinHostPort(r.addr.Host, strconv.Itoa(int(r.addr.Port))))
	ctx := ctxT(t)
	rcv, err := client.Dial(ctx, p.address(r), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	snd, err := client.Dial(ctx, p.address(r), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	q := newQueue(t, rcv, false)
	if err := snd.Secure(ctx, q.info.SndID, q.sndKey); err != nil {
		t.Fatal(err)
	}

	// End-to-end layer of the test: a per-queue NaCl box between the two
	// people, padded to the fixed body size, as the chat core does.
	plaintext := []byte("PLAINTEXT-MARKER: meet at the old mill at nine")
	peerPub, peerPriv, _ := box.GenerateKey(rand.Reader)
	var nonce [24]byte
	_, _ = rand.Read(nonce[:])
	padded := make([]byte, wire.MaxBodySize-box.Overhead-len(nonce))
	copy(padded, plaintext)
	e2e := box.Seal(nonce[:], padded, &nonce, peerPub, peerPriv)
	if err := snd.Send(ctx, q.info.SndID, q.sndKey, e2e); err != nil {
		t.Fatal(err)
	}
	rcv.Subscribe(ctx, q.sub)
	ev := nextEvent(t, rcv, client.EventMessage)
	if !bytes.Equal(ev.Message.Body, e2e) {
		t.Fatal("recipient did not get the sender's ciphertext")
	}
	opened, ok := box.Open(nil, ev.Message.Body[24:], (*[24]byte)(ev.Message.Body[:24]), peerPub, peerPriv)
	if !ok || !bytes.HasPrefix(opened, plaintext) {
		t.Fatal("end-to-end decryption failed")
	}
	// Leave a second message undelivered so the store holds one.
	if err := snd.Send(ctx, q.info.SndID, q.sndKey, e2e); err != nil {
		t.Fatal(err)
	}
	_ = rcv.Close()
	_ = snd.Close()
	_ = r.srv.Close()
	_ = r.st.Close()

	var disk []byte
	err = filepath.WalkDir(r.dbDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		disk = append(disk, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wireBytes := p.captured(t)

	// The captures are real: the store holds the sender's ciphertext and
	// the wire shows the handshake.
	if !bytes.Contains(disk, e2e[:64]) {
		t.Fatal("store capture does not contain the stored ciphertext")
	}
	if !bytes.Contains(wireBytes, []byte("wisp\x01")) || !bytes.Contains(wireBytes, []byte("wisp\x02")) || len(wireBytes) < 8*wire.BlockSize {
		t.Fatal("wire capture is empty")
	}
	for name, secret := range map[string][]byte{
		"plaintext":    plaintext[:16],
		"recipient ID": q.info.RcvID[:],
		"sender ID":    q.info.SndID[:],
	} {
		if bytes.Contains(disk, secret) {
			t.Errorf("%s found on disk", name)
		}
		if bytes.Contains(wireBytes, secret) {
			t.Errorf("%s found on the wire", name)
		}
	}
	// Bytes in and bytes out never match: the sender's ciphertext is not
	// visible on the wire at all (blocks are encrypted per block, and
	// delivery is re-encrypted for the recipient).
	if bytes.Contains(wireBytes, e2e[24:88]) {
		t.Error("sender ciphertext visible on the wire")
	}
}

func TestClientReconnectsAndResubscribes(t *testing.T) {
	r := startRelay(t, nil)
	p := startProxy(t, net.JoinHostPort(r.addr.Host, strconv.Itoa(int(r.addr.Port))))
	ctx := ctxT(t)
	rcv, err := client.Dial(ctx, p.address(r), client.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	snd := dial(t, r)
	const n = 60
	qs := make([]*queue, n)
	subs := make([]client.Subscription, n)
	for i := range qs {
		qs[i] = newQueue(t, snd, true)
		subs[i] = qs[i].sub
	}
	for i, err := range rcv.Subscribe(ctx, subs...) {
		if err != nil {
			t.Fatal(i, err)
		}
	}
	nextEvent(t, rcv, client.EventConnected)
	p.cut()
	if ev := nextEvent(t, rcv, client.EventDisconnected); ev.Err == nil {
		t.Fatal("disconnect without a reason")
	}
	nextEvent(t, rcv, client.EventConnected)
	// Every queue was resubscribed on the new connection.
	for _, q := range qs {
		if err := snd.Send(ctx, q.info.SndID, q.sndKey, q.info.RcvID[:]); err != nil {
			t.Fatal(err)
		}
	}
	got := map[wire.QueueID]bool{}
	for len(got) < n {
		ev := nextEvent(t, rcv, client.EventMessage)
		if !bytes.Equal(ev.Message.Body, ev.RcvID[:]) {
			t.Fatal("message on the wrong queue")
		}
		got[ev.RcvID] = true
		if err := rcv.Ack(ctx, subFor(qs, ev.RcvID), ev.Message.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Commands issued while connected work; a command in flight during a
	// cut fails with ErrConnectionLost or succeeds after reconnecting.
	if err := rcv.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func subFor(qs []*queue, id wire.QueueID) client.Subscription {
	for _, q := range qs {
		if q.info.RcvID == id {
			return q.sub
		}
	}
	return client.Subscription{}
}
