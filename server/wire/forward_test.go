package wire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
)

// prFixture is one forwarded SEND with fixed keys (those of
// forward_vectors.json): the destination's forward key pair, the layer
// key, the client's Forward and the destination's Forwarded.
type prFixture struct {
	fwdPriv *ecdh.PrivateKey
	fwd     [KeySize]byte
	layer   *[32]byte
	sender  ed25519.PrivateKey
	inner   Transmission
	f       *Forward
	opened  *Forwarded
	answer  []byte // the sealed OK
}

func newPRFixture(t testing.TB) *prFixture {
	t.Helper()
	x := &prFixture{fwdPriv: x25519Priv(t, prForwardPriv), sender: ed25519.NewKeyFromSeed(prSenderSeed)}
	x.fwd = [KeySize]byte(x.fwdPriv.PublicKey().Bytes())
	proxyEph := x25519Priv(t, prProxyEph)
	var err error
	if x.layer, err = LayerKey(proxyEph, x.fwd, [KeySize]byte(proxyEph.PublicKey().Bytes()), x.fwd); err != nil {
		t.Fatal(err)
	}
	x.inner = Transmission{CorrID: seq(8, 0xF8), EntityID: prSndID, Command: Command{Kind: CmdSEND, Body: []byte("hello")}}
	if x.f, err = newForward(x25519Priv(t, seq(32, 0x30)), x.fwd, &x.inner, x.sender); err != nil {
		t.Fatal(err)
	}
	if x.opened, err = OpenForward(x.fwdPriv, x.f.Eph, x.f.Sealed); err != nil {
		t.Fatal(err)
	}
	if x.answer, err = x.opened.SealAnswer(Command{Kind: AnsOK}); err != nil {
		t.Fatal(err)
	}
	return x
}

// flipped returns b with bit (i%8) of byte i inverted.
func prFlipped(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i/8] ^= 1 << (i % 8)
	return c
}

// positions lists the bytes of an n-byte input a test flips: all of the
// first and last 80, and every 61st in between.
func prPositions(n int) []int {
	var ps []int
	for i := 0; i < n; i++ {
		if i < 80 || i >= n-80 || i%61 == 0 {
			ps = append(ps, i)
		}
	}
	return ps
}

// mangled are the truncated, oversized and empty forms of a valid input.
func prMangled(b []byte) map[string][]byte {
	return map[string][]byte{
		"nil":             nil,
		"empty":           {},
		"one byte":        b[:1],
		"truncated by 1":  b[:len(b)-1],
		"truncated half":  b[:len(b)/2],
		"oversized by 1":  append(bytes.Clone(b), 0),
		"oversized by 64": append(bytes.Clone(b), make([]byte, 64)...),
	}
}

// lowOrder are the X25519 public keys whose product with any private key
// is all zeros (the u-coordinates of the points of order 1, 2, 4 and 8,
// and their non-canonical encodings p, p+1, p-1 ... with and without the
// high bit, which X25519 ignores).
func prLowOrder(t testing.TB) [][KeySize]byte {
	t.Helper()
	var out [][KeySize]byte
	for _, s := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	} {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		k := [KeySize]byte(b)
		out = append(out, k)
		k[31] |= 0x80
		out = append(out, k)
	}
	return out
}

func TestOpenLayerBadInputs(t *testing.T) {
	x := newPRFixture(t)
	for _, plain := range [][]byte{{}, []byte("x"), append(x.f.Eph[:], x.f.Sealed...)} {
		sealed, err := SealLayer(bytes.NewReader(seq(24, 1)), x.layer, plain)
		if err != nil || len(sealed) != len(plain)+LayerOverhead {
			t.Fatalf("SealLayer: %v", err)
		}
		if got, err := OpenLayer(x.layer, sealed); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("OpenLayer of a valid layer: %v", err)
		}
		for name, b := range prMangled(sealed) {
			if _, err := OpenLayer(x.layer, b); !errors.Is(err, ErrDecrypt) {
				t.Errorf("%d-byte layer %s: %v", len(plain), name, err)
			}
		}
		for _, i := range prPositions(len(sealed)) {
			for bit := range 8 {
				if _, err := OpenLayer(x.layer, prFlipped(sealed, 8*i+bit)); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("%d-byte layer, bit %d of byte %d flipped: %v", len(plain), bit, i, err)
				}
			}
		}
		other := *x.layer
		other[0] ^= 1
		if _, err := OpenLayer(&other, sealed); !errors.Is(err, ErrDecrypt) {
			t.Errorf("another layer key: %v", err)
		}
	}
	// SealLayer fails, not panics, when its reader gives no nonce.
	if _, err := SealLayer(bytes.NewReader(nil), x.layer, []byte("x")); err == nil {
		t.Error("SealLayer without randomness")
	}
}

func TestOpenForwardBadInputs(t *testing.T) {
	x := newPRFixture(t)
	for name, b := range prMangled(x.f.Sealed) {
		if f, err := OpenForward(x.fwdPriv, x.f.Eph, b); !errors.Is(err, ErrDecrypt) || f != nil {
			t.Errorf("sealed part %s: %v", name, err)
		}
	}
	for _, i := range prPositions(len(x.f.Sealed)) {
		if f, err := OpenForward(x.fwdPriv, x.f.Eph, prFlipped(x.f.Sealed, 8*i+i%8)); !errors.Is(err, ErrDecrypt) || f != nil {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	// Any bit of the ephemeral key flipped, even the high bit X25519
	// ignores (the salt still differs): it does not open.
	for i := range 8 * KeySize {
		if f, err := OpenForward(x.fwdPriv, [KeySize]byte(prFlipped(x.f.Eph[:], i)), x.f.Sealed); err == nil || f != nil {
			t.Fatalf("ephemeral key bit %d flipped: %v", i, err)
		}
	}
	// Sealed to another forward key (a route of an older session).
	other, err := newForward(x25519Priv(t, seq(32, 0x30)), [KeySize]byte(x25519Priv(t, seq(32, 0x71)).PublicKey().Bytes()), &x.inner, x.sender)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := OpenForward(x.fwdPriv, other.Eph, other.Sealed); !errors.Is(err, ErrDecrypt) || f != nil {
		t.Errorf("sealed to another forward key: %v", err)
	}
	// Low-order ephemeral keys: refused before any decryption.
	for _, k := range prLowOrder(t) {
		if f, err := OpenForward(x.fwdPriv, k, x.f.Sealed); !errors.Is(err, ErrCommand) || f != nil {
			t.Errorf("low-order ephemeral key %x: %v", k, err)
		}
	}
	// Well sealed but badly padded (non-zero fill, a length past the end):
	// ErrDecrypt, nothing parsed.
	keys, err := deriveForward(x25519Priv(t, seq(32, 0x30)), x.fwd, x.f.Eph, x.fwd)
	if err != nil {
		t.Fatal(err)
	}
	for name, padded := range map[string][]byte{
		"non-zero fill":        append(append([]byte{0, 1, 'x'}, make([]byte, ForwardPlainSize-4)...), 1),
		"length past the end":  append([]byte{0xff, 0xff}, make([]byte, ForwardPlainSize-2)...),
		"length one past room": append(binary.BigEndian.AppendUint16(nil, ForwardPlainSize-1), make([]byte, ForwardPlainSize-2)...),
	} {
		if f, err := OpenForward(x.fwdPriv, x.f.Eph, chachaSeal(t, keys.req[:], padded)); !errors.Is(err, ErrDecrypt) || f != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Well sealed and padded, but not a valid transmission: the parse
	// error, with what could be read, and an answer can still be sealed.
	for name, c := range map[string]struct {
		raw  []byte
		want error
	}{
		"empty":           {nil, ErrTransmission},
		"bad sig length":  {[]byte{3, 1, 2, 3}, ErrTransmission},
		"unknown command": {[]byte{0, 1, 'c', 0, 'N', 'O', 'P', 'E'}, ErrCommand},
		"SEND too large":  {append([]byte{0, 1, 'c', 0, 'S', 'E', 'N', 'D', ' '}, make([]byte, MaxBodySize+1)...), ErrTooLarge},
	} {
		sealed, err := sealOnce(&keys.req, c.raw, ForwardPlainSize, false)
		if err != nil {
			t.Fatal(name, err)
		}
		f, err := OpenForward(x.fwdPriv, x.f.Eph, sealed)
		if !errors.Is(err, c.want) || f == nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := f.SealAnswer(Command{Kind: AnsERR, Code: CodeCmd}); err != nil {
			t.Fatalf("%s: SealAnswer after a parse error: %v", name, err)
		}
	}
}

func TestForwardLowOrderKeys(t *testing.T) {
	x := newPRFixture(t)
	eph := x25519Priv(t, seq(32, 0x30))
	for _, k := range prLowOrder(t) {
		if _, err := newForward(eph, k, &x.inner, x.sender); !errors.Is(err, ErrCommand) {
			t.Errorf("NewForward to low-order forward key %x: %v", k, err)
		}
		if _, err := LayerKey(x.fwdPriv, k, k, x.fwd); !errors.Is(err, ErrCommand) {
			t.Errorf("LayerKey with low-order proxy key %x: %v", k, err)
		}
	}
}

func TestOpenAnswerBadInputs(t *testing.T) {
	x := newPRFixture(t)
	if c, err := x.f.OpenAnswer(x.answer); err != nil || c.Kind != AnsOK {
		t.Fatalf("valid answer: %v", err)
	}
	for name, b := range prMangled(x.answer) {
		if _, err := x.f.OpenAnswer(b); !errors.Is(err, ErrDecrypt) {
			t.Errorf("answer %s: %v", name, err)
		}
	}
	for i := range 8 * len(x.answer) {
		if _, err := x.f.OpenAnswer(prFlipped(x.answer, i)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("answer bit %d flipped: %v", i, err)
		}
	}
	// An answer sealed for another command (another ephemeral key).
	f2, err := newForward(x25519Priv(t, seq(32, 0xB0)), x.fwd, &x.inner, x.sender)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := OpenForward(x.fwdPriv, f2.Eph, f2.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := o2.SealAnswer(Command{Kind: AnsOK})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.f.OpenAnswer(a2); !errors.Is(err, ErrDecrypt) {
		t.Errorf("another command's answer: %v", err)
	}
	// Under the right key but for another corrID or entity ID, signed, or
	// not an answer: refused.
	bad := map[string]struct {
		t    Transmission
		sign bool
		want error
	}{
		"other corrID":      {Transmission{CorrID: seq(8, 0x01), EntityID: prSndID, Command: Command{Kind: AnsOK}}, false, ErrTransmission},
		"empty corrID":      {Transmission{EntityID: prSndID, Command: Command{Kind: AnsOK}}, false, ErrTransmission},
		"other entity":      {Transmission{CorrID: x.inner.CorrID, EntityID: seq(IDSize, 0x01), Command: Command{Kind: AnsOK}}, false, ErrTransmission},
		"no entity":         {Transmission{CorrID: x.inner.CorrID, Command: Command{Kind: AnsOK}}, false, ErrTransmission},
		"signed":            {Transmission{CorrID: x.inner.CorrID, EntityID: prSndID, Command: Command{Kind: AnsOK}}, true, ErrTransmission},
		"a command":         {Transmission{CorrID: x.inner.CorrID, EntityID: prSndID, Command: Command{Kind: CmdSUB}}, false, ErrCommand},
		"a forward command": {Transmission{CorrID: x.inner.CorrID, EntityID: prSndID, Command: Command{Kind: CmdRKEY}}, false, ErrCommand},
	}
	for name, b := range bad {
		raw := mustMarshal(t, b.t)
		if b.sign {
			if raw, err = b.t.Sign(x.opened.SessionID, x.sender); err != nil {
				t.Fatal(err)
			}
		}
		sealed, err := sealOnce(&x.opened.keys.ans, raw, AnswerPlainSize, false)
		if err != nil {
			t.Fatal(name, err)
		}
		if _, err := x.f.OpenAnswer(sealed); !errors.Is(err, b.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Well sealed, badly padded or not a transmission.
	for name, padded := range map[string][]byte{
		"non-zero fill": append(append([]byte{0, 1, 'x'}, make([]byte, AnswerPlainSize-4)...), 1),
		"length past":   append([]byte{0, AnswerPlainSize - 1}, make([]byte, AnswerPlainSize-2)...),
	} {
		if _, err := x.f.OpenAnswer(chachaSeal(t, x.opened.keys.ans[:], padded)); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := x.f.OpenAnswer(chachaSeal(t, x.opened.keys.ans[:], make([]byte, AnswerPlainSize))); err == nil {
		t.Error("an empty answer")
	}
}

func TestVerifyForwardKey(t *testing.T) {
	identity := ed25519.NewKeyFromSeed(prIdentitySeed)
	pub := [KeySize]byte(identity.Public().(ed25519.PublicKey))
	kh := HashIdentity(pub[:])
	fwd := [KeySize]byte(x25519Priv(t, prForwardPriv).PublicKey().Bytes())
	sig := SignForwardKey(identity, fwd)
	if err := VerifyForwardKey(kh, pub, fwd, sig); err != nil {
		t.Fatal(err)
	}
	// Another relay's key, even with its own valid signature.
	otherID := ed25519.NewKeyFromSeed(seq(32, 0x01))
	otherPub := [KeySize]byte(otherID.Public().(ed25519.PublicKey))
	if err := VerifyForwardKey(kh, otherPub, fwd, SignForwardKey(otherID, fwd)); !errors.Is(err, ErrIdentity) {
		t.Errorf("another identity: %v", err)
	}
	wrongHash := kh
	wrongHash[31] ^= 1
	if err := VerifyForwardKey(wrongHash, pub, fwd, sig); !errors.Is(err, ErrIdentity) {
		t.Errorf("another key hash: %v", err)
	}
	// Wrong signatures: any bit flipped, another key signed, the signature
	// of a plain message without the context, all zeros.
	for i := range 8 * SignatureSize {
		if err := VerifyForwardKey(kh, pub, fwd, [SignatureSize]byte(prFlipped(sig[:], i))); !errors.Is(err, ErrSignature) {
			t.Fatalf("signature bit %d flipped: %v", i, err)
		}
	}
	other := fwd
	other[0] ^= 1
	if err := VerifyForwardKey(kh, pub, other, sig); !errors.Is(err, ErrSignature) {
		t.Errorf("another forward key: %v", err)
	}
	if err := VerifyForwardKey(kh, pub, fwd, [SignatureSize]byte(ed25519.Sign(identity, fwd[:]))); !errors.Is(err, ErrSignature) {
		t.Errorf("signature without the context: %v", err)
	}
	if err := VerifyForwardKey(kh, pub, fwd, [SignatureSize]byte{}); !errors.Is(err, ErrSignature) {
		t.Errorf("zero signature: %v", err)
	}
}

// prCommandForms are a valid wire form of each private-routing command
// and answer, with the byte size of its arguments.
func prCommandForms(t testing.TB) []struct {
	c    Command
	args int
} {
	t.Helper()
	x := newPRFixture(t)
	layered, err := SealLayer(bytes.NewReader(seq(24, 0x20)), x.layer, append(x.f.Eph[:], x.f.Sealed...))
	if err != nil {
		t.Fatal(err)
	}
	ansLayered, err := SealLayer(bytes.NewReader(seq(24, 0x60)), x.layer, x.answer)
	if err != nil {
		t.Fatal(err)
	}
	id := [KeySize]byte(ed25519.NewKeyFromSeed(prIdentitySeed).Public().(ed25519.PublicKey))
	sig := SignForwardKey(ed25519.NewKeyFromSeed(prIdentitySeed), x.fwd)
	addr := prAddress()
	return []struct {
		c    Command
		args int
	}{
		{Command{Kind: CmdPRXY, Relay: addr}, 1 + len(addr.String()) + 1},
		{Command{Kind: CmdPRXY, Relay: addr, Password: bytes.Repeat([]byte("p"), MaxPasswordSize)}, 1 + len(addr.String()) + 1 + MaxPasswordSize},
		{Command{Kind: AnsPKEY, Route: [RouteIDSize]byte(prRouteID), Identity: id, DHKey: x.fwd, KeySig: sig}, 152},
		{Command{Kind: CmdPFWD, DHKey: x.f.Eph, Body: x.f.Sealed}, 16170},
		{Command{Kind: AnsPRES, Body: x.answer}, 144},
		{Command{Kind: CmdRKEY, DHKey: x.fwd}, 32},
		{Command{Kind: AnsFKEY, Identity: id, DHKey: x.fwd, KeySig: sig}, 128},
		{Command{Kind: CmdRFWD, Body: layered}, 16210},
		{Command{Kind: AnsRRES, Body: ansLayered}, 184},
	}
}

func TestParseForwardCommands(t *testing.T) {
	for _, form := range prCommandForms(t) {
		k := form.c.Kind
		raw, err := AppendCommand(nil, &form.c)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if len(raw) != len(k.String())+1+form.args {
			t.Fatalf("%s: %d bytes of arguments, want %d", k, len(raw)-len(k.String())-1, form.args)
		}
		c, err := ParseCommand(raw)
		if err != nil || c.Kind != k {
			t.Fatalf("%s: %v", k, err)
		}
		if again, err := AppendCommand(nil, &c); err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("%s: does not encode back: %v", k, err)
		}
		tag := []byte(k.String())
		for name, b := range map[string][]byte{
			"tag only":        tag,
			"tag and space":   append(bytes.Clone(tag), ' '),
			"truncated by 1":  raw[:len(raw)-1],
			"truncated half":  raw[:len(tag)+1+form.args/2],
			"oversized by 1":  append(bytes.Clone(raw), 0),
			"oversized by 64": append(bytes.Clone(raw), make([]byte, 64)...),
			"no space":        append(bytes.Clone(tag), raw[len(tag)+1:]...),
		} {
			if _, err := ParseCommand(b); !errors.Is(err, ErrCommand) {
				t.Errorf("%s %s: %v", k, name, err)
			}
			// Inside a transmission, the corrID survives for the answer.
			tr, err := ParseTransmission(append([]byte{0, 2, 'c', 'c', 0}, b...))
			if !errors.Is(err, ErrCommand) || string(tr.CorrID) != "cc" {
				t.Errorf("%s %s in a transmission: %v", k, name, err)
			}
		}
		// Bits flipped: never a panic; what parses encodes back (the
		// arguments are opaque bytes), except PRXY's text address, which
		// ParseAddress accepts in more forms than it writes.
		for _, at := range prPositions(len(raw)) {
			for bit := range 8 {
				i := 8*at + bit
				b := prFlipped(raw, i)
				c, err := ParseCommand(b)
				if i < 8*(len(tag)+1) {
					// A flip in the tag or the space is an error, or
					// another tag with the same arguments (RKEY and SKEY
					// differ by one bit and both take a 32-byte key).
					if err == nil {
						if again, _ := AppendCommand(nil, &c); c.Kind == k || !bytes.Equal(again, b) {
							t.Fatalf("%s: bit %d of the tag flipped parses as %s", k, i, c.Kind)
						}
					}
					continue
				}
				if err != nil || k == CmdPRXY {
					continue
				}
				if again, err := AppendCommand(nil, &c); err != nil || !bytes.Equal(again, b) {
					t.Fatalf("%s bit %d: does not encode back: %v", k, i, err)
				}
			}
		}
	}
}

// TestParsePRXYArguments: PRXY's length-prefixed address and password.
func TestParsePRXYArguments(t *testing.T) {
	a := prAddress().String()
	prxy := func(n int, addr string, rest ...byte) []byte {
		return append(append(append([]byte("PRXY "), byte(n)), addr...), rest...)
	}
	bad := map[string][]byte{
		"no address":            prxy(0, "", 0),
		"address length past":   prxy(len(a)+2, a, 0),
		"address length short":  prxy(len(a)-1, a, 0),
		"no password length":    prxy(len(a), a),
		"password length past":  prxy(len(a), a, 3, 'p', 'w'),
		"password length short": prxy(len(a), a, 1, 'p', 'w'),
		"password too long":     append(prxy(len(a), a, MaxPasswordSize+1), make([]byte, MaxPasswordSize+1)...),
		"not an address":        prxy(4, "wisp", 0),
		"http address":          prxy(len("https://x@h"), "https://x@h", 0),
		"address with a path":   prxy(len(a)+2, a+"/x", 0),
		"one byte":              []byte("PRXY \x00"),
	}
	for name, b := range bad {
		if _, err := ParseCommand(b); !errors.Is(err, ErrCommand) {
			t.Errorf("%s: %v", name, err)
		}
	}
	c, err := ParseCommand(prxy(len(a), a, 2, 'p', 'w'))
	if err != nil || c.Relay != prAddress() || string(c.Password) != "pw" {
		t.Fatalf("PRXY with a password: %v", err)
	}
	// An address too long for the length byte does not encode.
	long := Address{KeyHash: prAddress().KeyHash, Host: string(bytes.Repeat([]byte("h"), 250)), Port: 1}
	if _, err := AppendCommand(nil, &Command{Kind: CmdPRXY, Relay: long}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("long address: %v", err)
	}
	if _, err := AppendCommand(nil, &Command{Kind: CmdPRXY, Relay: prAddress(), Password: make([]byte, MaxPasswordSize+1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("long password: %v", err)
	}
}

// TestForwardBodySizes: the fixed-size bodies refuse any other size when
// encoding too.
func TestForwardBodySizes(t *testing.T) {
	for _, k := range []struct {
		kind Kind
		n    int
	}{{CmdPFWD, ForwardSealedSize}, {AnsPRES, AnswerSealedSize}, {CmdRFWD, ForwardLayerSize}, {AnsRRES, AnswerLayerSize}} {
		for _, n := range []int{0, k.n - 1, k.n + 1} {
			if _, err := AppendCommand(nil, &Command{Kind: k.kind, Body: make([]byte, n)}); !errors.Is(err, ErrCommand) {
				t.Errorf("%s with %d bytes: %v", k.kind, n, err)
			}
		}
	}
	// The largest forwarded transmission (signed SEND, 24-byte corrID,
	// full body) fills the padded size exactly; one byte more does not fit.
	x := newPRFixture(t)
	full := Transmission{CorrID: make([]byte, MaxCorrIDSize), EntityID: prSndID, Command: Command{Kind: CmdSEND, Body: make([]byte, MaxBodySize)}}
	f, err := newForward(x25519Priv(t, seq(32, 0x30)), x.fwd, &full, x.sender)
	if err != nil || len(f.Sealed) != ForwardSealedSize {
		t.Fatalf("largest SEND: %v", err)
	}
	raw, _ := full.Sign([32]byte{}, x.sender)
	if len(raw) != ForwardPlainSize-2 {
		t.Fatalf("largest SEND is %d bytes", len(raw))
	}
	// The largest answer: ERR PROHIBITED with a 24-byte corrID and entity.
	o, err := OpenForward(x.fwdPriv, f.Eph, f.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range AllCodes() {
		if _, err := o.SealAnswer(Command{Kind: AnsERR, Code: code}); err != nil {
			t.Fatalf("ERR %s does not fit: %v", code, err)
		}
	}
	// Every private-routing transmission fits a block with a 24-byte
	// corrID, a route ID where it has one, and even a signature.
	for _, form := range prCommandForms(t) {
		tr := Transmission{CorrID: make([]byte, MaxCorrIDSize), EntityID: prRouteID, Command: form.c}
		if _, err := tr.Sign([32]byte{}, x.sender); err != nil {
			t.Errorf("%s in a block: %v", form.c.Kind, err)
		}
	}
}

func TestForwardReplayIsDetectable(t *testing.T) {
	// The same command forwarded twice has the same ephemeral key (what a
	// destination refuses as a replay); two forwards of the same
	// transmission never share one, nor sealed bytes.
	x := newPRFixture(t)
	a, err := NewForward(rand.Reader, x.fwd, &x.inner, x.sender)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewForward(rand.Reader, x.fwd, &x.inner, x.sender)
	if err != nil {
		t.Fatal(err)
	}
	if a.Eph == b.Eph || bytes.Equal(a.Sealed, b.Sealed) {
		t.Fatal("two forwards share a key")
	}
	oa, err := OpenForward(x.fwdPriv, a.Eph, a.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := OpenForward(x.fwdPriv, b.Eph, b.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	pub := x.sender.Public().(ed25519.PublicKey)
	if oa.SessionID == ob.SessionID || !oa.T.Verify(oa.SessionID, pub) || oa.T.Verify(ob.SessionID, pub) {
		t.Fatal("signature bindings")
	}
}
