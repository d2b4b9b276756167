package wire

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/secretbox"
)

func TestParseAddress(t *testing.T) {
	kh := HashIdentity(make([]byte, 32)).String()
	good := []struct {
		in, host string
		port     uint16
		url      string
	}{
		{"wisp://" + kh + "@127.0.0.1:5223", "127.0.0.1", 5223, "ws://127.0.0.1:5223/wisp"},
		{"wisp://" + kh + "@localhost:1", "localhost", 1, "ws://localhost:1/wisp"},
		{"wisp://" + kh + "@[::1]:80", "::1", 80, "ws://[::1]:80/wisp"},
		{"wisp://" + kh + "@relay.example", "relay.example", 443, "wss://relay.example:443/wisp"},
		{"wisp://" + kh + "@relay.example:8443", "relay.example", 8443, "wss://relay.example:8443/wisp"},
		{"wisp://" + kh + "@[2001:db8::1]", "2001:db8::1", 443, "wss://[2001:db8::1]:443/wisp"},
	}
	for _, g := range good {
		a, err := ParseAddress(g.in)
		if err != nil {
			t.Fatalf("%s: %v", g.in, err)
		}
		if a.Host != g.host || a.Port != g.port || a.WebSocketURL() != g.url || a.KeyHash.String() != kh {
			t.Fatalf("%s: %+v %s", g.in, a, a.WebSocketURL())
		}
		if b, err := ParseAddress(a.String()); err != nil || b != a {
			t.Fatalf("round trip %s: %v", a, err)
		}
	}
	bad := map[string]string{
		"":                                         "scheme",
		"https://" + kh + "@h:1":                   "scheme",
		"wisp://" + kh + "h:1":                     "'@'",
		"wisp://@h:1":                              "missing key hash",
		"wisp://" + kh[:42] + "@h:1":               "bytes",
		"wisp://" + kh + "x@h:1":                   "bytes",
		"wisp://" + kh[:40] + "!!!@h:1":            "base64url",
		"wisp://" + kh + "=@h:1":                   "base64url",
		"wisp://" + kh + "@":                       "missing host",
		"wisp://" + kh + "@:5223":                  "missing host",
		"wisp://" + kh + "@h:0":                    "port",
		"wisp://" + kh + "@h:65536":                "port",
		"wisp://" + kh + "@h:x":                    "port",
		"wisp://" + kh + "@h:1/path":               "path",
		"wisp://" + kh + "@h:1?q":                  "path",
		"wisp://" + kh + "@a:b:c":                  "host:port",
		"wisp://" + kh + "@[::1":                   "IPv6",
		"wisp://" + kh + "@[zz::1]:4":              "IPv6",
		"wisp://" + kh + "@h:1@other":              "unexpected",
		"wisp://" + strings.Repeat("A", 44) + "@h": "bytes",
	}
	for in, want := range bad {
		_, err := ParseAddress(in)
		if !errors.Is(err, ErrAddress) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want error mentioning %q", in, err, want)
		}
	}
}

func newPair(t *testing.T) (client, relay *Session) {
	t.Helper()
	_, id, _ := ed25519.GenerateKey(rand.Reader)
	hs, hello, err := NewClientHandshake(HashIdentity(id.Public().(ed25519.PublicKey)))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ParseClientHello(hello)
	if err != nil {
		t.Fatal(err)
	}
	p, rh, err := RelayRespond(id, SupportedVersions(), ch)
	if err != nil {
		t.Fatal(err)
	}
	c, confirm, err := hs.Finish(rh, SupportedVersions())
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Confirm(confirm)
	if err != nil {
		t.Fatal(err)
	}
	return c, r
}

func TestHandshakeTampering(t *testing.T) {
	_, id, _ := ed25519.GenerateKey(rand.Reader)
	kh := HashIdentity(id.Public().(ed25519.PublicKey))
	hs, hello, _ := NewClientHandshake(kh)
	ch, _ := ParseClientHello(hello)
	_, rh, _ := RelayRespond(id, SupportedVersions(), ch)
	// Every meaningful byte of the relay hello is covered.
	for i := range relayHelloLen {
		bad := bytes.Clone(rh)
		bad[i] ^= 1
		if _, _, err := hs.Finish(bad, SupportedVersions()); err == nil {
			t.Fatalf("flipping byte %d of the relay hello went unnoticed", i)
		}
	}
	bad := bytes.Clone(rh)
	bad[BlockSize-1] = 1
	if _, _, err := hs.Finish(bad, SupportedVersions()); !errors.Is(err, ErrHandshake) {
		t.Fatalf("padding: %v", err)
	}
	if _, _, err := hs.Finish(rh[:100], SupportedVersions()); !errors.Is(err, ErrBlockSize) {
		t.Fatalf("short: %v", err)
	}
	if _, _, err := hs.Finish(rh, VersionRange{2, 3}); !errors.Is(err, ErrVersion) {
		t.Fatalf("version: %v", err)
	}
	// A client hello must be a whole, zero-padded block with a valid key.
	for _, b := range [][]byte{nil, hello[:clientHelloLen], append(bytes.Clone(hello[:BlockSize-1]), 1), make([]byte, BlockSize)} {
		if _, err := ParseClientHello(b); err == nil {
			t.Fatalf("accepted bad hello of %d bytes", len(b))
		}
	}
	// The relay refuses a version outside its range in the confirmation.
	p, _, _ := RelayRespond(id, VersionRange{5, 6}, ch)
	_, rh2, _ := RelayRespond(id, VersionRange{1, 1}, ch)
	_ = rh2
	hs2, hello2, _ := NewClientHandshake(kh)
	ch2, _ := ParseClientHello(hello2)
	p2, rh3, _ := RelayRespond(id, SupportedVersions(), ch2)
	_, confirm, err := hs2.Finish(rh3, SupportedVersions())
	if err != nil {
		t.Fatal(err)
	}
	p2.versions = VersionRange{2, 2}
	if _, err := p2.Confirm(confirm); !errors.Is(err, ErrVersion) {
		t.Fatalf("confirm version: %v", err)
	}
	if _, err := p.Confirm(make([]byte, BlockSize)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("garbage confirm: %v", err)
	}
}

func TestBlocks(t *testing.T) {
	c, r := newPair(t)
	if c.ID != r.ID {
		t.Fatal("session IDs differ")
	}
	var b BlockBuilder
	if !b.Add([]byte("one")) || !b.Add([]byte("two")) {
		t.Fatal("add")
	}
	for i := range 3 { // chains advance in step, both directions
		blk, err := c.Seal(b.Payload())
		if err != nil || len(blk) != BlockSize {
			t.Fatal(err)
		}
		p, err := r.Open(blk)
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		ts, err := SplitBlock(p)
		if err != nil || len(ts) != 2 || string(ts[0]) != "one" || string(ts[1]) != "two" {
			t.Fatalf("split: %q %v", ts, err)
		}
		back, _ := r.Seal(p)
		if _, err := c.Open(back); err != nil {
			t.Fatal(err)
		}
	}
	// Same payload, different ciphertext each block; replayed block fails.
	b1, _ := c.Seal(b.Payload())
	b2, _ := c.Seal(b.Payload())
	if bytes.Equal(b1, b2) {
		t.Fatal("per-block keys repeat")
	}
	if _, err := r.Open(b2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("out of order block: %v", err)
	}
	if _, err := r.Open(b1[:100]); !errors.Is(err, ErrBlockSize) {
		t.Fatal(err)
	}
	if _, err := c.Seal(make([]byte, 10)); !errors.Is(err, ErrBlockSize) {
		t.Fatal(err)
	}
	// Builder limits: one maximal transmission fills the block.
	b.Reset()
	if !b.Add(make([]byte, MaxTransmissionSize)) || b.Add([]byte{1}) {
		t.Fatal("max transmission")
	}
	b.Reset()
	if b.Add(make([]byte, MaxTransmissionSize+1)) {
		t.Fatal("oversized transmission accepted")
	}
	for range MaxTransmissions {
		if !b.Add([]byte{1}) {
			t.Fatal("small transmissions")
		}
	}
	if b.Add([]byte{1}) {
		t.Fatal("more than MaxTransmissions")
	}
	if ts, err := SplitBlock(b.Payload()); err != nil || len(ts) != MaxTransmissions {
		t.Fatal(err)
	}
}

func TestSplitBlockErrors(t *testing.T) {
	mk := func(f func(p []byte)) []byte {
		p := make([]byte, BlockPayloadSize)
		f(p)
		return p
	}
	cases := map[string][]byte{
		"zero count":       mk(func(p []byte) {}),
		"zero length":      mk(func(p []byte) { p[0] = 1 }),
		"length past end":  mk(func(p []byte) { p[0], p[1], p[2] = 1, 0xff, 0xff }),
		"count too high":   mk(func(p []byte) { p[0], p[2], p[3] = 2, 1, 'x' }),
		"non-zero padding": mk(func(p []byte) { p[0], p[2], p[3], p[9] = 1, 1, 'x', 1 }),
		"last prefix cut":  mk(func(p []byte) { p[0] = 255; p[1], p[2] = 0x3f, 0xea }),
	}
	for name, p := range cases {
		if _, err := SplitBlock(p); !errors.Is(err, ErrBlock) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := SplitBlock(make([]byte, 5)); !errors.Is(err, ErrBlockSize) {
		t.Fatal(err)
	}
}

func TestCommandsRoundTrip(t *testing.T) {
	c, r := newPair(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	pub := key.Public().(ed25519.PublicKey)
	ent := bytes.Repeat([]byte{7}, IDSize)
	var k [32]byte
	copy(k[:], pub)
	cmds := []Command{
		{Kind: CmdNEW, AuthKey: k, DHKey: k},
		{Kind: CmdNEW, AuthKey: k, DHKey: k, Password: bytes.Repeat([]byte("p"), MaxPasswordSize)},
		{Kind: CmdSKEY, AuthKey: k},
		{Kind: CmdSEND, Body: []byte{}},
		{Kind: CmdSEND, Body: make([]byte, MaxBodySize)},
		{Kind: CmdSUB}, {Kind: CmdACK, MsgID: MsgID{1, 2}}, {Kind: CmdGET}, {Kind: CmdOFF}, {Kind: CmdDEL}, {Kind: CmdPING},
		{Kind: AnsIDS, RcvID: QueueID{1}, SndID: QueueID{2}, DHKey: k},
		{Kind: AnsOK}, {Kind: AnsEND}, {Kind: AnsPONG},
		{Kind: AnsMSG, MsgID: MsgID{3}, Body: make([]byte, SealedMessageSize)},
	}
	for _, code := range AllCodes() {
		cmds = append(cmds, Command{Kind: AnsERR, Code: code})
	}
	for _, cmd := range cmds {
		tr := Transmission{CorrID: []byte("corr"), EntityID: ent, Command: cmd}
		raw, err := tr.Sign(c.ID, key)
		if err != nil {
			t.Fatalf("%s: %v", cmd.Kind, err)
		}
		got, err := ParseTransmission(raw)
		if err != nil {
			t.Fatalf("%s: %v", cmd.Kind, err)
		}
		if got.Command.Kind != cmd.Kind || got.Command.Code != cmd.Code || !bytes.Equal(got.Command.Body, cmd.Body) ||
			got.Command.AuthKey != cmd.AuthKey || got.Command.MsgID != cmd.MsgID || got.Command.RcvID != cmd.RcvID ||
			!bytes.Equal(got.Command.Password, cmd.Password) || string(got.CorrID) != "corr" || !bytes.Equal(got.EntityID, ent) {
			t.Fatalf("%s: round trip mismatch", cmd.Kind)
		}
		if !got.Verify(r.ID, pub) {
			t.Fatalf("%s: signature", cmd.Kind)
		}
		var other [32]byte
		if got.Verify(other, pub) {
			t.Fatalf("%s: signature verified under another session", cmd.Kind)
		}
		// Any flipped bit of the signed part breaks the signature.
		flipped := bytes.Clone(raw)
		flipped[len(flipped)-1] ^= 0x80
		if ft, err := ParseTransmission(flipped); err == nil && ft.Verify(r.ID, pub) {
			t.Fatalf("%s: flipped transmission verified", cmd.Kind)
		}
	}
}

func TestTransmissionErrors(t *testing.T) {
	tooBig := Transmission{CorrID: []byte("c"), Command: Command{Kind: CmdSEND, Body: make([]byte, MaxBodySize+1)}}
	if _, err := tooBig.Marshal(); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if _, err := (&Transmission{CorrID: make([]byte, 25), Command: Command{Kind: CmdPING}}).Marshal(); !errors.Is(err, ErrTransmission) {
		t.Fatal(err)
	}
	if _, err := (&Transmission{EntityID: make([]byte, 3), Command: Command{Kind: CmdPING}}).Marshal(); !errors.Is(err, ErrTransmission) {
		t.Fatal(err)
	}
	if _, err := (&Transmission{Command: Command{Kind: 99}}).Marshal(); !errors.Is(err, ErrCommand) {
		t.Fatal(err)
	}
	if _, err := (&Transmission{Command: Command{Kind: AnsERR, Code: 99}}).Marshal(); !errors.Is(err, ErrCommand) {
		t.Fatal(err)
	}
	framing := [][]byte{nil, {}, {64}, {0}, {0, 25}, {0, 1}, {0, 0, 5, 1, 2, 3, 4, 5}, {0, 0, 24}}
	for _, b := range framing {
		if _, err := ParseTransmission(b); !errors.Is(err, ErrTransmission) {
			t.Errorf("%x: %v", b, err)
		}
	}
	commands := []string{"", "HELLO", "PING ", "SUB x", "ACK short", "NEW x", "SKEY abc", "ERR NOPE", "ERR", "MSG x", "IDS 12", "SEND"}
	for _, c := range commands {
		tr, err := ParseTransmission(append([]byte{0, 2, 'c', 'c', 0}, c...))
		if !errors.Is(err, ErrCommand) {
			t.Errorf("%q: %v", c, err)
		}
		if string(tr.CorrID) != "cc" {
			t.Errorf("%q: correlation ID lost", c)
		}
	}
	big := append([]byte{0, 1, 'c', 0}, "SEND "...)
	if _, err := ParseTransmission(append(big, make([]byte, MaxBodySize+1)...)); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	// NEW password length byte must match what follows.
	newCmd := append([]byte{0, 1, 'c', 0}, "NEW "...)
	newCmd = append(newCmd, make([]byte, 64)...)
	for _, tail := range [][]byte{{3, 'a'}, {0, 'a'}, {}} {
		if _, err := ParseTransmission(append(bytes.Clone(newCmd), tail...)); !errors.Is(err, ErrCommand) {
			t.Errorf("NEW tail %x: %v", tail, err)
		}
	}
}

func TestSealMessage(t *testing.T) {
	var k [32]byte
	_, _ = rand.Read(k[:])
	var id MsgID
	_, _ = rand.Read(id[:])
	body := []byte("stored ciphertext")
	ts := time.Unix(1_800_000_000, 0)
	sealed := SealMessage(&k, id, ts, true, body)
	if bytes.Contains(sealed, body) || len(sealed) != SealedMessageSize {
		t.Fatal("sealed message leaks its body or has the wrong size")
	}
	m, err := OpenMessage(&k, id, sealed)
	if err != nil || !m.Quota || !m.Time.Equal(ts) || !bytes.Equal(m.Body, body) || m.ID != id {
		t.Fatalf("%+v %v", m, err)
	}
	for _, i := range []int{0, 1, 15, 16, 17, 100, SealedMessageSize / 2, SealedMessageSize - 1} {
		bad := bytes.Clone(sealed)
		bad[i] ^= 1
		if _, err := OpenMessage(&k, id, bad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	for _, bad := range [][]byte{nil, sealed[:SealedMessageSize-1], append(bytes.Clone(sealed), 0)} {
		if _, err := OpenMessage(&k, id, bad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%d bytes accepted", len(bad))
		}
	}
	wrongID := id
	wrongID[0] ^= 1
	if _, err := OpenMessage(&k, wrongID, sealed); !errors.Is(err, ErrDecrypt) {
		t.Fatal("wrong message ID (nonce) accepted")
	}
	if SealMessage(&k, id, ts, false, make([]byte, MaxBodySize+1)) != nil {
		t.Fatal("an oversize body was sealed")
	}
}

// TestSealMessageFixedSize: the sealed MSG body has one size whatever the
// message (the quota marker's empty body, a short one, the largest), so the
// recipient's side of the wire learns no length; what is inside is the
// crypto/pad form of timestamp || flags || body, and a box of the right
// size around badly padded or flagged content is refused.
func TestSealMessageFixedSize(t *testing.T) {
	if SealedMessageSize != 16027 {
		t.Fatalf("SealedMessageSize = %d", SealedMessageSize)
	}
	var k [32]byte
	_, _ = rand.Read(k[:])
	id := MsgID{9}
	for _, n := range []int{0, 1, 5000, MaxBodySize} {
		body := bytes.Repeat([]byte{0xAB}, n)
		sealed := SealMessage(&k, id, time.Unix(7, 0), n == 0, body)
		if len(sealed) != SealedMessageSize {
			t.Fatalf("%d-byte body sealed to %d bytes", n, len(sealed))
		}
		m, err := OpenMessage(&k, id, sealed)
		if err != nil || !bytes.Equal(m.Body, body) || m.Quota != (n == 0) || m.Time.Unix() != 7 {
			t.Fatalf("%d-byte body: %v", n, err)
		}
		nonce := [24]byte(id)
		inner, ok := secretbox.Open(nil, sealed, &nonce, &k)
		if !ok || len(inner) != SealedMessageSize-secretbox.Overhead || binary.BigEndian.Uint16(inner) != uint16(9+n) {
			t.Fatalf("%d-byte body: inner form", n)
		}
	}
	seal := func(inner []byte) []byte {
		nonce := [24]byte(id)
		return secretbox.Seal(nil, inner, &nonce, &k)
	}
	good := make([]byte, SealedMessageSize-secretbox.Overhead)
	binary.BigEndian.PutUint16(good, 9)
	for name, inner := range map[string][]byte{
		"unknown flag":    func() []byte { b := bytes.Clone(good); b[2+8] = 2; return b }(),
		"short header":    func() []byte { b := bytes.Clone(good); b[1] = 8; return b }(),
		"non-zero fill":   func() []byte { b := bytes.Clone(good); b[len(b)-1] = 1; return b }(),
		"length past end": func() []byte { b := bytes.Clone(good); binary.BigEndian.PutUint16(b, 0xffff); return b }(),
	} {
		if _, err := OpenMessage(&k, id, seal(inner)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%s accepted: %v", name, err)
		}
	}
	if _, err := OpenMessage(&k, id, seal(good)); err != nil {
		t.Fatalf("the well-formed control case: %v", err)
	}
}

// TestMaxMSGFitsBlock: a MSG answer with the longest corrID and an entity
// ID (a GET answer), even signed, fits one block with room to spare.
func TestMaxMSGFitsBlock(t *testing.T) {
	var k [32]byte
	tr := Transmission{
		CorrID: bytes.Repeat([]byte{1}, MaxCorrIDSize), EntityID: bytes.Repeat([]byte{2}, IDSize),
		Command: Command{Kind: AnsMSG, MsgID: MsgID{3}, Body: SealMessage(&k, MsgID{3}, time.Unix(0, 0), false, make([]byte, MaxBodySize))},
	}
	raw, err := tr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// sigLen 1 + corr 1+24 + entity 1+24 + "MSG " 4 + message ID 24 + 16,027
	if len(raw) != 16106 {
		t.Fatalf("MSG transmission is %d bytes", len(raw))
	}
	var b BlockBuilder
	if !b.Add(raw) {
		t.Fatal("MSG does not fit a block")
	}
	if room := MaxTransmissionSize - len(raw); room != 259 {
		t.Fatalf("room left: %d", room)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signed, err := tr.Sign([32]byte{}, key)
	if err != nil || len(signed) != 16106+SignatureSize {
		t.Fatalf("signed MSG: %d %v", len(signed), err)
	}
	back, err := ParseTransmission(raw)
	if err != nil || back.Command.Kind != AnsMSG || len(back.Command.Body) != SealedMessageSize {
		t.Fatalf("parse: %v", err)
	}
	for _, n := range []int{SealedMessageSize - 1, SealedMessageSize + 1, 0} {
		short := tr
		short.Command.Body = make([]byte, n)
		if _, err := short.Marshal(); !errors.Is(err, ErrCommand) {
			t.Fatalf("MSG with a %d-byte body encoded: %v", n, err)
		}
		args := append([]byte("MSG "), make([]byte, IDSize+n)...)
		if _, err := ParseCommand(args); !errors.Is(err, ErrCommand) {
			t.Fatalf("MSG with a %d-byte body parsed: %v", n, err)
		}
	}
}

func TestErrCodes(t *testing.T) {
	for _, c := range AllCodes() {
		if got, ok := parseCode(c.String()); !ok || got != c {
			t.Fatalf("%s", c)
		}
		var err error = c
		unknown := AllCodes()[len(AllCodes())-1] + 1
		if !errors.Is(err, c) || errors.Is(err, unknown) {
			t.Fatal("errors.Is")
		}
	}
	if ErrCode(0).String() != "ErrCode(0)" || Kind(200).String() != "Kind(200)" {
		t.Fatal("unknown names")
	}
}

func TestSealBatch(t *testing.T) {
	c, r := newPair(t)
	raws := make([][]byte, 0, 6)
	for i := range 6 {
		raws = append(raws, bytes.Repeat([]byte{byte(i + 1)}, 6000))
	}
	blocks, err := c.SealBatch(raws)
	if err != nil || len(blocks) != 3 {
		t.Fatalf("%d blocks, %v; want 6 × 6000 bytes in 3 blocks", len(blocks), err)
	}
	var got [][]byte
	for _, b := range blocks {
		p, err := r.Open(b)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := SplitBlock(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ts...)
	}
	for i := range raws {
		if !bytes.Equal(got[i], raws[i]) {
			t.Fatalf("transmission %d out of order or changed", i)
		}
	}
	if _, err := c.SealBatch([][]byte{make([]byte, MaxTransmissionSize+1)}); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if blocks, err := c.SealBatch(nil); len(blocks) != 0 || err != nil {
		t.Fatal("empty batch")
	}
}

// messages serves whole messages through the Reader method that
// ReadBlock uses (the shape of coder/websocket's Conn.Reader).
type messages struct {
	msgs [][]byte
	err  error
}

func (m *messages) Reader(context.Context) (int, io.Reader, error) {
	if len(m.msgs) == 0 {
		return 0, nil, m.err
	}
	b := m.msgs[0]
	m.msgs = m.msgs[1:]
	return 2, bytes.NewReader(b), nil
}

func TestReadBlock(t *testing.T) {
	full := bytes.Repeat([]byte{7}, BlockSize)
	src := &messages{msgs: [][]byte{full, {1, 2, 3}, {}, make([]byte, BlockSize+1)}, err: io.ErrClosedPipe}
	ctx := context.Background()
	typ, b, err := ReadBlock(ctx, src)
	if err != nil || typ != 2 || !bytes.Equal(b, full) {
		t.Fatalf("full block: %v %d", err, len(b))
	}
	if _, b, err := ReadBlock(ctx, src); err != nil || !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Fatalf("short message: %v %x", err, b)
	}
	if _, b, err := ReadBlock(ctx, src); err != nil || len(b) != 0 {
		t.Fatalf("empty message: %v %x", err, b)
	}
	if _, _, err := ReadBlock(ctx, src); !errors.Is(err, ErrBlockSize) {
		t.Fatalf("long message: %v", err)
	}
	if _, _, err := ReadBlock(ctx, src); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("reader error: %v", err)
	}
}
