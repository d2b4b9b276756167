//go:build !js

package chat

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// TestFileTrafficPrivacy sends a file between two users whose every relay
// connection goes through a recording TCP proxy, then checks that neither the
// WebSocket traffic (each frame parsed and unmasked) nor the relays' file
// storage holds the file's name or any 64-byte run of its plaintext.
func TestFileTrafficPrivacy(t *testing.T) {
	const name = "wisp-secret-holiday-plan.bin"
	data := make([]byte, 3<<20+13)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	sc := newLeakScanner(data, name)

	t.Run("the scanner flags leaks", func(t *testing.T) { checkScannerFlags(t, sc, data, name) })
	t.Run("the parser refuses malformed streams", testParserRefuses)

	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	p1, p2 := startRecordingProxy(t, r1.Addr()), startRecordingProxy(t, r2.Addr())
	// a receives on r1, so it uploads there and b downloads from there
	// (the description names the proxied address): both transfers cross p1.
	a := newUserAt(t, "Quinn", p1.addr)
	b := newUserAt(t, "Rae", p2.addr)
	ab, ba := connect(t, a, b, false)

	if _, err := a.p.SendFile(ctxT(t), ab, FileMeta{Name: name, Type: "application/octet-stream", Size: int64(len(data))},
		bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	// The chunks are on the relay now; they may be deleted once b has them.
	if stored := checkRelayStorage(t, sc, r1, r2); stored < int64(len(data)) {
		t.Errorf("the relays store %d bytes after the upload, less than the %d-byte file", stored, len(data))
	}

	got := downloadAll(t, b, ba, awaitOneMessage(t, b, ba).Seq)
	if !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes that differ from the %d sent", len(got), len(data))
	}
	checkRelayStorage(t, sc, r1, r2)

	// Close both users so every connection ends with its close handshake,
	// then parse what crossed the proxies.
	a.m.Close()
	b.m.Close()
	for _, p := range []*recordingProxy{p1, p2} {
		p.stop(t)
	}
	var up, down int64
	for i, p := range []*recordingProxy{p1, p2} {
		for j, c := range p.recorded() {
			where := fmt.Sprintf("proxy %d, connection %d", i+1, j)
			u, d, err := parseConn(c.up, c.down)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			for _, s := range []struct {
				what string
				b    []byte
			}{{"raw client bytes", c.up}, {"raw relay bytes", c.down}, {"client payloads", u}, {"relay payloads", d}} {
				if leak := sc.scan(s.b); leak != "" {
					t.Errorf("%s, %s: %s", where, s.what, leak)
				}
			}
			if i == 0 {
				up += int64(len(u))
				down += int64(len(d))
			}
		}
	}
	t.Logf("proxy 1: %d connections, %d bytes of client and %d of relay payload; proxy 2: %d connections",
		len(p1.recorded()), up, down, len(p2.recorded()))
	// The file really went through the proxy both ways.
	if up < int64(len(data)) || down < int64(len(data)) {
		t.Errorf("proxy 1 saw %d bytes of upload and %d of download payload, want at least %d each", up, down, len(data))
	}
}

// awaitOneMessage waits for the first message of a conversation and returns it.
func awaitOneMessage(t *testing.T, u *user, contact string) Message {
	t.Helper()
	var in Message
	waitFor(t, "the message", func() (bool, error) {
		msgs, err := u.p.Messages(contact, 0, 10)
		if len(msgs) > 0 {
			in = msgs[0]
		}
		return len(msgs) > 0, err
	})
	return in
}

// downloadAll downloads a received file and returns its content.
func downloadAll(t *testing.T, u *user, contact string, seq uint64) []byte {
	t.Helper()
	if err := u.p.DownloadFile(ctxT(t), contact, seq, nil); err != nil {
		t.Fatal(err)
	}
	rd, _, err := u.p.OpenFile(contact, seq)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// newUserAt is newUser for a user whose preset relay is addr.
func newUserAt(t *testing.T, name string, addr wire.Address) *user {
	t.Helper()
	fsys, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	u := &user{t: t, fs: fsys}
	u.m = NewManager(fsys, Config{Origin: "http://127.0.0.1:8080", PresetRelays: []string{addr.String()}, Argon2: fastArgon,
		Client: client.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}})
	if u.id, err = u.m.CreateProfile(ctxT(t), NewProfile{DisplayName: name}); err != nil {
		t.Fatal(err)
	}
	u.unlock()
	t.Cleanup(func() { u.m.Close() })
	return u
}

// checkRelayStorage scans every file under the relays' file stores (names
// and content) and returns the bytes stored.
func checkRelayStorage(t *testing.T, sc *leakScanner, relays ...*relaytest.Relay) int64 {
	t.Helper()
	var total int64
	for _, r := range relays {
		err := filepath.WalkDir(r.FilesDir(), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			total += int64(len(b))
			if leak := sc.scan([]byte(p)); leak != "" {
				t.Errorf("relay file path %s: %s", p, leak)
			}
			if leak := sc.scan(b); leak != "" {
				t.Errorf("relay file %s: %s", p, leak)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return total
}

// leakScanner finds the file name or any run of at least runLen bytes of the
// plaintext in a byte string.
//
// Every run plain[i:i+64] contains the whole 32-byte block that starts at the
// first multiple of 32 at or after i (that start k is at most i+31, so the
// block ends by i+63). Indexing the 32-byte-aligned blocks of the plaintext
// and looking up the 32 bytes at every offset of the scanned bytes therefore
// finds every place where a 64-byte run could be; extending each hit both
// ways against the plaintext confirms whether the common run really reaches
// 64 bytes. A bitset on a hash of the first 8 bytes skips the map lookup at
// almost every offset.
type leakScanner struct {
	plain  []byte
	names  [][]byte
	blocks map[[blockLen]byte][]int // aligned block -> offsets in plain
	filter []uint64                 // 1<<filterBits bits
}

const (
	runLen     = 64
	blockLen   = runLen / 2
	filterBits = 24
)

func newLeakScanner(plain []byte, name string) *leakScanner {
	s := &leakScanner{plain: plain, names: [][]byte{[]byte(name)},
		blocks: make(map[[blockLen]byte][]int, len(plain)/blockLen), filter: make([]uint64, 1<<filterBits/64)}
	if ext := filepath.Ext(name); ext != "" {
		s.names = append(s.names, []byte(strings.TrimSuffix(name, ext)))
	}
	for k := 0; k+blockLen <= len(plain); k += blockLen {
		key := [blockLen]byte(plain[k : k+blockLen])
		s.blocks[key] = append(s.blocks[key], k)
		h := filterHash(plain[k:])
		s.filter[h/64] |= 1 << (h % 64)
	}
	return s
}

func filterHash(b []byte) uint64 {
	return binary.LittleEndian.Uint64(b) * 0x9e3779b97f4a7c15 >> (64 - filterBits)
}

// scan describes the first leak in b, or returns "".
func (s *leakScanner) scan(b []byte) string {
	for _, n := range s.names {
		if i := bytes.Index(b, n); i >= 0 {
			return fmt.Sprintf("the file name %q at offset %d", n, i)
		}
	}
	for j := 0; j+blockLen <= len(b); j++ {
		h := filterHash(b[j:])
		if s.filter[h/64]&(1<<(h%64)) == 0 {
			continue
		}
		for _, k := range s.blocks[[blockLen]byte(b[j:j+blockLen])] {
			back := 0
			for back < j && back < k && b[j-1-back] == s.plain[k-1-back] {
				back++
			}
			fwd := blockLen
			for j+fwd < len(b) && k+fwd < len(s.plain) && b[j+fwd] == s.plain[k+fwd] {
				fwd++
			}
			if back+fwd >= runLen {
				return fmt.Sprintf("%d bytes of the plaintext (from its offset %d) at offset %d", back+fwd, k-back, j-back)
			}
		}
	}
	return ""
}

// A recordingProxy forwards TCP connections to a relay and records every
// byte of both directions. The Wisp handshake authenticates the relay's
// identity end to end, so clients accept the relay through it.
type recordingProxy struct {
	ln   net.Listener
	addr wire.Address // the relay's identity at the proxy's port

	mu    sync.Mutex
	conns []*proxiedConn
	live  map[net.Conn]struct{}
	wg    sync.WaitGroup
}

type proxiedConn struct {
	mu       sync.Mutex
	up, down []byte // client to relay, relay to client
}

// recordedConn is a copy of what a connection carried.
type recordedConn struct{ up, down []byte }

func startRecordingProxy(t *testing.T, relay wire.Address) *recordingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{ln: ln, addr: relay, live: map[net.Conn]struct{}{}}
	p.addr.Port = uint16(ln.Addr().(*net.TCPAddr).Port)
	target := net.JoinHostPort(relay.Host, strconv.Itoa(int(relay.Port)))
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(c, target)
			}()
		}
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *recordingProxy) forward(c net.Conn, target string) {
	r, err := net.Dial("tcp", target)
	if err != nil {
		_ = c.Close()
		return
	}
	pc := &proxiedConn{}
	p.mu.Lock()
	p.conns = append(p.conns, pc)
	p.live[c], p.live[r] = struct{}{}, struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pc.pipe(r, c, &pc.up) }()
	go func() { defer wg.Done(); pc.pipe(c, r, &pc.down) }()
	wg.Wait()
	_ = c.Close()
	_ = r.Close()
	p.mu.Lock()
	delete(p.live, c)
	delete(p.live, r)
	p.mu.Unlock()
}

// pipe copies src to dst, recording into rec, and half-closes dst at the end.
func (pc *proxiedConn) pipe(dst, src net.Conn, rec *[]byte) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			pc.mu.Lock()
			*rec = append(*rec, buf[:n]...)
			pc.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// stop closes the listener and waits for the connections to end (closing
// them after a grace period).
func (p *recordingProxy) stop(t *testing.T) {
	_ = p.ln.Close()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(5 * time.Second):
	}
	t.Log("closing proxied connections still open after 5 s")
	p.mu.Lock()
	for c := range p.live {
		_ = c.Close()
	}
	p.mu.Unlock()
	<-done
}

func (p *recordingProxy) recorded() []recordedConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]recordedConn, len(p.conns))
	for i, pc := range p.conns {
		pc.mu.Lock()
		out[i] = recordedConn{up: bytes.Clone(pc.up), down: bytes.Clone(pc.down)}
		pc.mu.Unlock()
	}
	return out
}

var errStream = errors.New("malformed WebSocket stream")

// parseConn parses a recorded WebSocket connection (RFC 6455): the HTTP
// upgrade each way, then frames. It returns, for each direction, the
// payloads of all its messages (reassembled, unmasked and inflated) and
// control frames, concatenated in order.
func parseConn(up, down []byte) (upPayload, downPayload []byte, err error) {
	if len(up) == 0 && len(down) == 0 {
		return nil, nil, nil // accepted and closed unused
	}
	reqHead, upFrames, ok := bytes.Cut(up, []byte("\r\n\r\n"))
	if !ok || !bytes.HasPrefix(reqHead, []byte("GET ")) {
		return nil, nil, fmt.Errorf("%w: no upgrade request", errStream)
	}
	respHead, downFrames, ok := bytes.Cut(down, []byte("\r\n\r\n"))
	if !ok || !bytes.HasPrefix(respHead, []byte("HTTP/1.1 101 ")) {
		return nil, nil, fmt.Errorf("%w: no 101 upgrade response", errStream)
	}
	deflate := bytes.Contains(bytes.ToLower(respHead), []byte("permessage-deflate"))
	if upPayload, err = parseFrames(upFrames, true, deflate); err != nil {
		return nil, nil, fmt.Errorf("client to relay: %w", err)
	}
	if downPayload, err = parseFrames(downFrames, false, deflate); err != nil {
		return nil, nil, fmt.Errorf("relay to client: %w", err)
	}
	return upPayload, downPayload, nil
}

// parseFrames parses one direction's frames. Client frames must be masked
// and server frames not; RSV1 (a compressed message) is allowed only when
// permessage-deflate was negotiated. The stream may end only between frames,
// outside a fragmented message, and nothing may follow a close frame.
func parseFrames(b []byte, fromClient, deflate bool) ([]byte, error) {
	var out, msg, compressed []byte
	inMsg, msgCompressed, closed := false, false, false
	for off := 0; off < len(b); {
		if closed {
			return nil, fmt.Errorf("%w: %d bytes after the close frame", errStream, len(b)-off)
		}
		if len(b)-off < 2 {
			return nil, fmt.Errorf("%w: ends inside a frame header at %d", errStream, off)
		}
		b0, b1 := b[off], b[off+1]
		fin, rsv1, op := b0&0x80 != 0, b0&0x40 != 0, b0&0x0f
		masked, n := b1&0x80 != 0, uint64(b1&0x7f)
		off += 2
		switch n {
		case 126, 127:
			size := 2
			if n == 127 {
				size = 8
			}
			if len(b)-off < size {
				return nil, fmt.Errorf("%w: ends inside a frame length at %d", errStream, off)
			}
			if size == 2 {
				n = uint64(binary.BigEndian.Uint16(b[off:]))
			} else if n = binary.BigEndian.Uint64(b[off:]); n>>63 != 0 {
				return nil, fmt.Errorf("%w: 64-bit length with the top bit set", errStream)
			}
			off += size
		}
		if b0&0x30 != 0 {
			return nil, fmt.Errorf("%w: RSV2 or RSV3 set", errStream)
		}
		if masked != fromClient {
			return nil, fmt.Errorf("%w: frame masked=%t", errStream, masked)
		}
		var key []byte
		if masked {
			if len(b)-off < 4 {
				return nil, fmt.Errorf("%w: ends inside a masking key at %d", errStream, off)
			}
			key = b[off : off+4]
			off += 4
		}
		if uint64(len(b)-off) < n {
			return nil, fmt.Errorf("%w: ends inside a %d-byte payload at %d", errStream, n, off)
		}
		payload := bytes.Clone(b[off : off+int(n)])
		off += int(n)
		if masked {
			for i := range payload {
				payload[i] ^= key[i%4]
			}
		}

		if op >= 8 {
			if !fin || n > 125 || rsv1 || op > 10 {
				return nil, fmt.Errorf("%w: bad control frame (opcode %d, fin %t, %d bytes)", errStream, op, fin, n)
			}
			out = append(out, payload...)
			closed = op == 8
			continue
		}
		switch {
		case op == 0 && !inMsg:
			return nil, fmt.Errorf("%w: continuation frame outside a message", errStream)
		case op == 0 && rsv1:
			return nil, fmt.Errorf("%w: RSV1 on a continuation frame", errStream)
		case op == 1 || op == 2:
			if inMsg {
				return nil, fmt.Errorf("%w: new message inside a fragmented one", errStream)
			}
			if rsv1 && !deflate {
				return nil, fmt.Errorf("%w: RSV1 set without permessage-deflate", errStream)
			}
			inMsg, msgCompressed = true, rsv1
		case op != 0:
			return nil, fmt.Errorf("%w: reserved opcode %d", errStream, op)
		}
		msg = append(msg, payload...)
		if !fin {
			continue
		}
		if msgCompressed {
			compressed = append(append(compressed, msg...), 0, 0, 0xff, 0xff)
		} else {
			out = append(out, msg...)
		}
		msg, inMsg = msg[:0], false
	}
	if inMsg {
		return nil, fmt.Errorf("%w: ends inside a fragmented message", errStream)
	}
	if len(compressed) > 0 {
		// One inflater over every compressed message of the direction in
		// order, each ending in its sync-flush tail: valid with and
		// without context takeover. The stream has no final block, so it
		// ends with io.ErrUnexpectedEOF once everything is out.
		plain, err := io.ReadAll(flate.NewReader(bytes.NewReader(compressed)))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: inflating: %w", errStream, err)
		}
		out = append(out, plain...)
	}
	return out, nil
}

// wsFrame encodes one WebSocket frame; a non-nil key masks it.
func wsFrame(b0 byte, payload, key []byte) []byte {
	var out []byte
	var mask byte
	if key != nil {
		mask = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = []byte{b0, mask | byte(n)}
	case n < 1<<16:
		out = binary.BigEndian.AppendUint16([]byte{b0, mask | 126}, uint16(n))
	default:
		out = binary.BigEndian.AppendUint64([]byte{b0, mask | 127}, uint64(n))
	}
	out = append(out, key...)
	for i, c := range payload {
		if key != nil {
			c ^= key[i%4]
		}
		out = append(out, c)
	}
	return out
}

const (
	testRequest   = "GET /wisp/files HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\r\n"
	testResponse  = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
	deflateHeader = "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
)

// checkScannerFlags shows the checks can fail: synthetic streams that leak
// are flagged, and a run one byte short of the limit is not.
func checkScannerFlags(t *testing.T, sc *leakScanner, data []byte, name string) {
	key := []byte{0x5a, 0xc3, 0x0f, 0x99}
	noise := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A masked client message of 70000 bytes (64-bit length) in two
	// fragments (16-bit length first), with 64 bytes of the plaintext from
	// an odd offset across the fragment boundary.
	leaky := append(append(noise(270), data[1001:1065]...), noise(70000-270-64)...)
	up := append(append([]byte(testRequest), wsFrame(0x02, leaky[:300], key)...), wsFrame(0x80, leaky[300:], key)...)
	// A server text frame that carries the file name.
	named := append([]byte(testResponse), wsFrame(0x81, []byte(`{"name":"`+name+`"}`), nil)...)
	// A compressed server message with a plaintext run.
	var z bytes.Buffer
	zw, err := flate.NewWriter(&z, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(append(noise(40), data[77777:77777+runLen]...)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Flush(); err != nil {
		t.Fatal(err)
	}
	deflated := append([]byte(deflateHeader), wsFrame(0xc2, bytes.TrimSuffix(z.Bytes(), []byte{0, 0, 0xff, 0xff}), nil)...)

	for _, tc := range []struct {
		what     string
		up, down []byte
	}{
		{"plaintext in a fragmented masked client message", up, []byte(testResponse)},
		{"the name in a server frame", []byte(testRequest), named},
		{"plaintext in a compressed server message", []byte(testRequest), deflated},
	} {
		u, d, err := parseConn(tc.up, tc.down)
		if err != nil {
			t.Errorf("%s: %v", tc.what, err)
			continue
		}
		if sc.scan(u) == "" && sc.scan(d) == "" {
			t.Errorf("%s: not flagged", tc.what)
		}
	}
	// 63 bytes hold a whole aligned block (1024..1056) but are not a leak.
	short := append([]byte(testRequest), wsFrame(0x82, append(noise(9), data[1001:1064]...), key)...)
	u, _, err := parseConn(short, []byte(testResponse))
	if err != nil {
		t.Fatal(err)
	}
	if leak := sc.scan(u); leak != "" {
		t.Errorf("a 63-byte run was flagged: %s", leak)
	}
	if leak := sc.scan(data[len(data)-runLen:]); leak == "" {
		t.Error("the plaintext's last 64 bytes were not flagged")
	}
}

func testParserRefuses(t *testing.T) {
	key := []byte{1, 2, 3, 4}
	good := wsFrame(0x82, make([]byte, 200), key)
	for _, tc := range []struct {
		what     string
		up, down []byte
	}{
		{"no upgrade request", []byte("\x82\x00"), []byte(testResponse)},
		{"no upgrade response", []byte(testRequest), []byte("HTTP/1.1 403 Forbidden\r\n\r\n")},
		{"truncated header", append([]byte(testRequest), 0x82), []byte(testResponse)},
		{"truncated length", append([]byte(testRequest), good[:3]...), []byte(testResponse)},
		{"truncated key", append([]byte(testRequest), good[:6]...), []byte(testResponse)},
		{"truncated payload", append([]byte(testRequest), good[:len(good)-1]...), []byte(testResponse)},
		{"unmasked client frame", append([]byte(testRequest), wsFrame(0x82, []byte("x"), nil)...), []byte(testResponse)},
		{"masked server frame", []byte(testRequest), append([]byte(testResponse), wsFrame(0x82, []byte("x"), key)...)},
		{"RSV1 without deflate", []byte(testRequest), append([]byte(testResponse), wsFrame(0xc2, []byte("x"), nil)...)},
		{"RSV2", []byte(testRequest), append([]byte(testResponse), wsFrame(0xa2, []byte("x"), nil)...)},
		{"orphan continuation", []byte(testRequest), append([]byte(testResponse), wsFrame(0x80, []byte("x"), nil)...)},
		{"unfinished message", []byte(testRequest), append([]byte(testResponse), wsFrame(0x02, []byte("x"), nil)...)},
		{"fragmented control frame", []byte(testRequest), append([]byte(testResponse), wsFrame(0x09, nil, nil)...)},
		{"reserved opcode", []byte(testRequest), append([]byte(testResponse), wsFrame(0x83, nil, nil)...)},
		{"data after close", []byte(testRequest), append(append([]byte(testResponse), wsFrame(0x88, nil, nil)...), wsFrame(0x82, nil, nil)...)},
		{"bad deflate data", []byte(testRequest), append([]byte(deflateHeader), wsFrame(0xc2, []byte{0xff, 0xff, 0xff}, nil)...)},
	} {
		if _, _, err := parseConn(tc.up, tc.down); !errors.Is(err, errStream) {
			t.Errorf("%s: %v, want %v", tc.what, err, errStream)
		}
	}
	// A well-formed exchange that ends with close frames parses.
	up := append(append([]byte(testRequest), good...), wsFrame(0x88, []byte{3, 232}, key)...)
	down := append(append([]byte(testResponse), wsFrame(0x82, []byte("ok"), nil)...), wsFrame(0x88, []byte{3, 232}, nil)...)
	u, d, err := parseConn(up, down)
	if err != nil || len(u) != 202 || string(d) != "ok\x03\xe8" {
		t.Errorf("a good exchange: %d and %q bytes, %v", len(u), d, err)
	}
}
