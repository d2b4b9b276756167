package wire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/wisp-chat/wisp/crypto/pad"
)

// ffFixture is the forwarded FGET (class 1) and FACK (class 0) of
// forward_file_vectors.json with fixed keys: the destination's forward
// key pair, the layer key, the client's Forwards, the destination's
// Forwardeds and their sealed answers (CHUNK and OK).
type ffFixture struct {
	fwdPriv              *ecdh.PrivateKey
	fwd                  [KeySize]byte
	layer                *[32]byte
	rcpt                 ffRecipient
	chunk                []byte
	get, ack             FileTransmission // the inner FGET and FACK
	getEph, ackEph       *ecdh.PrivateKey
	fget, fack           *Forward
	oget, oack           *Forwarded
	getAnswer, ackAnswer []byte
}

func newFFFixture(t testing.TB) *ffFixture {
	t.Helper()
	x := &ffFixture{fwdPriv: x25519Priv(t, ffForwardPriv), rcpt: newFFRecipient(t), chunk: ffChunk(ffChunkSeed, ffClass.Size())}
	x.fwd = [KeySize]byte(x.fwdPriv.PublicKey().Bytes())
	proxyEph := x25519Priv(t, ffProxyEph)
	var err error
	if x.layer, err = LayerKey(proxyEph, x.fwd, [KeySize]byte(proxyEph.PublicKey().Bytes()), x.fwd); err != nil {
		t.Fatal(err)
	}
	cmds := ffCommands(t)
	get, ack := cmds[1], cmds[2]
	x.get = FileTransmission{CorrID: get.innerCorr, EntityID: x.rcpt.id, Command: FileCommand{Kind: CmdFGET}}
	x.ack = FileTransmission{CorrID: ack.innerCorr, EntityID: x.rcpt.id, Command: FileCommand{Kind: CmdFACK}}
	x.getEph, x.ackEph = x25519Priv(t, get.eph), x25519Priv(t, ack.eph)
	if x.fget, err = newFileForward(x.getEph, x.fwd, get.class, &x.get, x.rcpt.auth); err != nil {
		t.Fatal(err)
	}
	if x.fack, err = newFileForward(x.ackEph, x.fwd, ack.class, &x.ack, x.rcpt.auth); err != nil {
		t.Fatal(err)
	}
	if x.oget, err = OpenFileForward(x.fwdPriv, get.class, x.fget.Eph, x.fget.Sealed); err != nil {
		t.Fatal(err)
	}
	if x.oack, err = OpenFileForward(x.fwdPriv, ack.class, x.fack.Eph, x.fack.Sealed); err != nil {
		t.Fatal(err)
	}
	if x.getAnswer, err = x.oget.SealFileAnswer(get.answer); err != nil {
		t.Fatal(err)
	}
	if x.ackAnswer, err = x.oack.SealFileAnswer(ack.answer); err != nil {
		t.Fatal(err)
	}
	return x
}

// ffCase is one of the fixture's two forwarded commands.
type ffCase struct {
	name   string
	class  ChunkClass
	t      *FileTransmission
	eph    *ecdh.PrivateKey
	f      *Forward
	o      *Forwarded
	answer []byte
}

func (x *ffFixture) cases() []ffCase {
	return []ffCase{
		{"FGET", Class64K, &x.get, x.getEph, x.fget, x.oget, x.getAnswer},
		{"FACK", ClassControl, &x.ack, x.ackEph, x.fack, x.oack, x.ackAnswer},
	}
}

// ffFlipAt inverts bit (i%8) of byte i/8 of b in place; calling it again
// restores b.
func ffFlipAt(b []byte, i int) { b[i/8] ^= 1 << (i % 8) }

func TestOpenFileForwardBadInputs(t *testing.T) {
	x := newFFFixture(t)
	for _, c := range x.cases() {
		for name, b := range prMangled(c.f.Sealed) {
			if f, err := OpenFileForward(x.fwdPriv, c.class, c.f.Eph, b); !errors.Is(err, ErrDecrypt) || f != nil {
				t.Errorf("%s: sealed part %s: %v", c.name, name, err)
			}
		}
		// Every bit of the sealed part.
		sealed := bytes.Clone(c.f.Sealed)
		for i := range 8 * len(sealed) {
			ffFlipAt(sealed, i)
			if f, err := OpenFileForward(x.fwdPriv, c.class, c.f.Eph, sealed); !errors.Is(err, ErrDecrypt) || f != nil {
				t.Fatalf("%s: bit %d of the sealed part flipped: %v", c.name, i, err)
			}
			ffFlipAt(sealed, i)
		}
		// Every bit of the ephemeral key, even the high bit X25519
		// ignores (the salt still differs).
		for i := range 8 * KeySize {
			if f, err := OpenFileForward(x.fwdPriv, c.class, [KeySize]byte(prFlipped(c.f.Eph[:], i)), c.f.Sealed); err == nil || f != nil {
				t.Fatalf("%s: ephemeral key bit %d flipped: %v", c.name, i, err)
			}
		}
		// Low-order ephemeral keys: refused before any decryption.
		for _, k := range prLowOrder(t) {
			if f, err := OpenFileForward(x.fwdPriv, c.class, k, c.f.Sealed); !errors.Is(err, ErrCommand) || f != nil {
				t.Errorf("%s: low-order ephemeral key %x: %v", c.name, k, err)
			}
		}
		// Sealed to another forward key (a route of an older session).
		other, err := newFileForward(c.eph, [KeySize]byte(x25519Priv(t, seq(32, 0x75)).PublicKey().Bytes()), c.class, c.t, x.rcpt.auth)
		if err != nil {
			t.Fatal(err)
		}
		if f, err := OpenFileForward(x.fwdPriv, c.class, other.Eph, other.Sealed); !errors.Is(err, ErrDecrypt) || f != nil {
			t.Errorf("%s: sealed to another forward key: %v", c.name, err)
		}
	}
	// A queue command's sealed part (16,138 bytes) is not a file one.
	q := newPRFixture(t)
	if f, err := OpenFileForward(q.fwdPriv, ClassControl, q.f.Eph, q.f.Sealed); !errors.Is(err, ErrDecrypt) || f != nil {
		t.Errorf("a queue command: %v", err)
	}

	// Well sealed but badly padded: ErrDecrypt, nothing parsed.
	keys, err := deriveForward(x.getEph, x.fwd, x.fget.Eph, x.fwd)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := x.get.Sign(keys.sess, x.rcpt.auth)
	if err != nil {
		t.Fatal(err)
	}
	queuePadded, err := pad.Pad(raw, FileForwardPlainSize)
	if err != nil {
		t.Fatal(err)
	}
	withLen := func(n uint32, fill byte) []byte {
		b := make([]byte, FileForwardPlainSize)
		binary.BigEndian.PutUint32(b, n)
		b[len(b)-1] = fill
		return b
	}
	for name, padded := range map[string][]byte{
		"non-zero fill":                 withLen(1, 1),
		"non-zero fill after a message": append(binary.BigEndian.AppendUint32(nil, uint32(len(raw))), append(bytes.Clone(raw), append(make([]byte, FileForwardPlainSize-4-len(raw)-1), 7)...)...),
		"length past the end":           withLen(0xffffffff, 0),
		"length 2^31":                   withLen(1<<31, 0),
		"length one past room":          withLen(FileForwardPlainSize-3, 0),
		"2-byte length (crypto/pad)":    queuePadded,
	} {
		if len(padded) != FileForwardPlainSize {
			t.Fatalf("%s: %d bytes", name, len(padded))
		}
		if f, err := OpenFileForward(x.fwdPriv, ffClass, x.fget.Eph, chachaSeal(t, keys.req[:], padded)); !errors.Is(err, ErrDecrypt) || f != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Exactly filled (length = room): the padding opens, the parse fails.
	if f, err := OpenFileForward(x.fwdPriv, ffClass, x.fget.Eph, chachaSeal(t, keys.req[:], withLen(FileForwardPlainSize-4, 0xff))); f == nil || errors.Is(err, ErrDecrypt) || err == nil {
		t.Errorf("a message filling the padded size: %v", err)
	}

	// Well sealed and padded, but not a valid transmission: the parse
	// error, with what could be read; an answer can still be sealed, and
	// it opens for the client that sent those IDs.
	for name, c := range map[string]struct {
		raw  []byte
		want error
	}{
		"empty":            {nil, ErrTransmission},
		"bad sig length":   {[]byte{3, 1, 2, 3}, ErrTransmission},
		"entity of 5":      {[]byte{0, 1, 'c', 5, 1, 2, 3, 4, 5, 'F', 'G', 'E', 'T'}, ErrTransmission},
		"truncated corrID": {[]byte{0, 24, 'c'}, ErrTransmission},
		"unknown command":  {[]byte{0, 1, 'c', 0, 'N', 'O', 'P', 'E'}, ErrCommand},
		"a queue command":  {[]byte("\x00\x01c\x00SEND x"), ErrCommand},
		"FGET with args":   {[]byte("\x00\x01c\x00FGET x"), ErrCommand},
		"FPUT of nothing":  {[]byte("\x00\x01c\x00FPUT "), ErrCommand},
	} {
		sealed, err := sealOnce(&keys.req, c.raw, FileForwardPlainSize, true)
		if err != nil {
			t.Fatal(name, err)
		}
		f, err := OpenFileForward(x.fwdPriv, ffClass, x.fget.Eph, sealed)
		if !errors.Is(err, c.want) || f == nil {
			t.Fatalf("%s: %v", name, err)
		}
		ans, err := f.SealFileAnswer(FileCommand{Kind: AnsFERR, Code: CodeForParseError(err)})
		if err != nil || len(ans) != FileAnswerSealedSize(ffClass) {
			t.Fatalf("%s: SealFileAnswer after a parse error: %v", name, err)
		}
		corr, ent := answerIDs(f.FT.CorrID, f.FT.EntityID)
		cf, err := newFileForward(x.getEph, x.fwd, ffClass, &FileTransmission{CorrID: corr, EntityID: ent, Command: FileCommand{Kind: CmdFGET}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := cf.OpenFileAnswer(ans); err != nil || got.Kind != AnsFERR || got.Code != CodeForParseError(c.want) {
			t.Fatalf("%s: the answer does not open: %v %+v", name, err, got)
		}
	}
}

func TestFileForwardLowOrderKeys(t *testing.T) {
	x := newFFFixture(t)
	for _, k := range prLowOrder(t) {
		if _, err := newFileForward(x.getEph, k, ffClass, &x.get, x.rcpt.auth); !errors.Is(err, ErrCommand) {
			t.Errorf("NewFileForward to low-order forward key %x: %v", k, err)
		}
	}
}

func TestOpenFileAnswerBadInputs(t *testing.T) {
	x := newFFFixture(t)
	if c, err := x.fget.OpenFileAnswer(x.getAnswer); err != nil || c.Kind != AnsCHUNK {
		t.Fatalf("valid CHUNK: %v", err)
	} else if data, err := OpenChunk(&x.rcpt.boxKey, c.Data); err != nil || !bytes.Equal(data, x.chunk) {
		t.Fatalf("the chunk: %v", err)
	}
	if c, err := x.fack.OpenFileAnswer(x.ackAnswer); err != nil || c.Kind != AnsFOK {
		t.Fatalf("valid OK: %v", err)
	}
	for _, c := range x.cases() {
		for name, b := range prMangled(c.answer) {
			if _, err := c.f.OpenFileAnswer(b); !errors.Is(err, ErrDecrypt) {
				t.Errorf("%s: answer %s: %v", c.name, name, err)
			}
		}
		// Bits flipped: all of the OK's, one per position of the CHUNK's.
		ans := bytes.Clone(c.answer)
		for _, at := range prPositions(len(ans)) {
			for bit := range 8 {
				if len(ans) > 1024 && bit != at%8 {
					continue
				}
				i := 8*at + bit
				ffFlipAt(ans, i)
				if _, err := c.f.OpenFileAnswer(ans); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("%s: answer bit %d flipped: %v", c.name, i, err)
				}
				ffFlipAt(ans, i)
			}
		}
		// The answer of another command (another ephemeral key), of the
		// same class.
		f2, err := newFileForward(x25519Priv(t, seq(32, 0x58)), x.fwd, c.class, c.t, x.rcpt.auth)
		if err != nil {
			t.Fatal(err)
		}
		o2, err := OpenFileForward(x.fwdPriv, c.class, f2.Eph, f2.Sealed)
		if err != nil {
			t.Fatal(err)
		}
		a2, err := o2.SealFileAnswer(FileCommand{Kind: AnsFOK})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.f.OpenFileAnswer(a2); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: another command's answer: %v", c.name, err)
		}
	}

	// Under the right key but for another corrID or entity ID, signed, or
	// not an answer: refused.
	keys := x.oack.keys
	okTo := func(corrID, entity []byte) FileTransmission {
		return FileTransmission{CorrID: corrID, EntityID: entity, Command: FileCommand{Kind: AnsFOK}}
	}
	envelope := "\x00\x08" + string(x.ack.CorrID) + "\x18" + string(x.rcpt.id)
	ok := okTo(x.ack.CorrID, x.rcpt.id)
	signedOK, err := ok.Sign(x.oack.SessionID, x.rcpt.auth)
	if err != nil {
		t.Fatal(err)
	}
	tx := func(ft FileTransmission) []byte { return mustMarshalFile(t, ft) }
	on := func(c FileCommand) []byte {
		return tx(FileTransmission{CorrID: x.ack.CorrID, EntityID: x.rcpt.id, Command: c})
	}
	for name, b := range map[string]struct {
		raw  []byte
		want error
	}{
		"other corrID":    {tx(okTo(seq(8, 0x01), x.rcpt.id)), ErrTransmission},
		"empty corrID":    {tx(okTo(nil, x.rcpt.id)), ErrTransmission},
		"other entity":    {tx(okTo(x.ack.CorrID, seq(IDSize, 0x01))), ErrTransmission},
		"no entity":       {tx(okTo(x.ack.CorrID, nil)), ErrTransmission},
		"signed":          {signedOK, ErrTransmission},
		"FACK":            {on(FileCommand{Kind: CmdFACK}), ErrCommand},
		"RKEY":            {on(FileCommand{Kind: CmdFRKEY}), ErrCommand},
		"PRXY":            {on(FileCommand{Kind: CmdFPRXY, Fwd: Command{Relay: prAddress()}}), ErrCommand},
		"unknown ERR":     {[]byte(envelope + "ERR NOPE"), ErrCommand},
		"a queue MSG":     {[]byte(envelope + "MSG x"), ErrCommand},
		"CHUNK too short": {[]byte(envelope + "CHUNK x"), ErrCommand},
		"broken envelope": {[]byte{0, 8, 1}, ErrTransmission},
	} {
		sealed, err := sealOnce(&keys.ans, b.raw, AnswerPlainSize, true)
		if err != nil {
			t.Fatal(name, err)
		}
		if _, err := x.fack.OpenFileAnswer(sealed); !errors.Is(err, b.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Well sealed, badly padded or empty.
	okRaw := mustMarshalFile(t, FileTransmission{CorrID: x.ack.CorrID, EntityID: x.rcpt.id, Command: FileCommand{Kind: AnsFOK}})
	queuePadded, err := pad.Pad(okRaw, AnswerPlainSize)
	if err != nil {
		t.Fatal(err)
	}
	fill := ffPadWideTB(t, okRaw, AnswerPlainSize)
	fill[AnswerPlainSize-1] = 1
	for name, padded := range map[string][]byte{
		"non-zero fill":              fill,
		"length past":                append(binary.BigEndian.AppendUint32(nil, AnswerPlainSize-3), make([]byte, AnswerPlainSize-4)...),
		"length 2^32-1":              append([]byte{0xff, 0xff, 0xff, 0xff}, make([]byte, AnswerPlainSize-4)...),
		"2-byte length (crypto/pad)": queuePadded,
	} {
		if _, err := x.fack.OpenFileAnswer(chachaSeal(t, keys.ans[:], padded)); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := x.fack.OpenFileAnswer(chachaSeal(t, keys.ans[:], make([]byte, AnswerPlainSize))); err == nil {
		t.Error("an empty answer")
	}
	// The same OK with the 4-byte padding opens.
	if got, err := x.fack.OpenFileAnswer(chachaSeal(t, keys.ans[:], ffPadWideTB(t, okRaw, AnswerPlainSize))); err != nil || got.Kind != AnsFOK {
		t.Fatalf("the OK itself: %v", err)
	}
}

// ffPadWideTB is ffPadWide for any testing.TB.
func ffPadWideTB(t testing.TB, m []byte, size int) []byte {
	t.Helper()
	out, err := padWide(m, size)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFileAnswerClasses: the answer's size is that of the class the
// client asked for; an answer of another class does not open.
func TestFileAnswerClasses(t *testing.T) {
	x := newFFFixture(t)
	// The same command (same ephemeral key, so the same keys) asking for
	// another class: the client's Forward for class 2 or 0 refuses the
	// class-1 answer, and the class-1 one refuses answers of class 2 and 0.
	forClass := func(c ChunkClass) *Forward {
		f, err := newFileForward(x.getEph, x.fwd, c, &x.get, x.rcpt.auth)
		if err != nil || f.Eph != x.fget.Eph || !bytes.Equal(f.Sealed, x.fget.Sealed) {
			t.Fatalf("class %d: %v", c, err)
		}
		return f
	}
	for _, c := range []ChunkClass{ClassControl, Class256K, Class1M, Class4M} {
		if _, err := forClass(c).OpenFileAnswer(x.getAnswer); !errors.Is(err, ErrDecrypt) {
			t.Errorf("a class-1 answer opened as class %d: %v", c, err)
		}
		// The destination opened with class c (the class travels in clear
		// in PFWD and RFWD, outside the sealed command: a proxy that
		// changes it is not detected by the destination) answers at c's
		// size, which the class-1 client refuses.
		o, err := OpenFileForward(x.fwdPriv, c, x.fget.Eph, x.fget.Sealed)
		if err != nil {
			t.Fatalf("class %d: %v", c, err)
		}
		a, err := o.SealFileAnswer(FileCommand{Kind: AnsFERR, Code: CodeNoMsg})
		if err != nil || len(a) != FileAnswerSealedSize(c) {
			t.Fatalf("class %d: %v", c, err)
		}
		if _, err := x.fget.OpenFileAnswer(a); !errors.Is(err, ErrDecrypt) {
			t.Errorf("a class-%d answer opened as class 1: %v", c, err)
		}
		if got, err := forClass(c).OpenFileAnswer(a); err != nil || got.Code != CodeNoMsg {
			t.Errorf("a class-%d answer opened as class %d: %v", c, c, err)
		}
	}
	// An ERR is padded to the class's size: it is as long as a CHUNK.
	e, err := x.oget.SealFileAnswer(FileCommand{Kind: AnsFERR, Code: CodeNoMsg})
	if err != nil || len(e) != len(x.getAnswer) || len(e) != 65808 {
		t.Fatalf("ERR at class 1: %d bytes, %v", len(e), err)
	}
}

// TestSealFileAnswerSizes: a CHUNK fits exactly the classes whose answer
// holds it; one that does not is ErrTooLarge.
func TestSealFileAnswerSizes(t *testing.T) {
	x := newFFFixture(t)
	// The longest FGET (24-byte corrID) is 119 bytes and seals to 272.
	long := FileTransmission{CorrID: seq(MaxCorrIDSize, 0x01), EntityID: x.rcpt.id, Command: FileCommand{Kind: CmdFGET}}
	if raw, _ := long.Sign([32]byte{}, x.rcpt.auth); len(raw) != 119 {
		t.Fatalf("longest FGET is %d bytes", len(raw))
	}
	// Anything longer than 252 bytes cannot be forwarded.
	big := FileTransmission{CorrID: corr(1), EntityID: x.rcpt.id, Command: FileCommand{Kind: CmdFPUT, Data: make([]byte, 200)}}
	if _, err := newFileForward(x.getEph, x.fwd, ffClass, &big, x.rcpt.auth); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a 200-byte FPUT forwarded: %v", err)
	}
	for _, c := range append([]ChunkClass{ClassControl}, Classes()...) {
		f, err := newFileForward(x.getEph, x.fwd, c, &long, x.rcpt.auth)
		if err != nil || len(f.Sealed) != FileForwardSealedSize {
			t.Fatalf("class %d: %v", c, err)
		}
		o, err := OpenFileForward(x.fwdPriv, c, f.Eph, f.Sealed)
		if err != nil || !o.FT.Verify(o.SessionID, x.rcpt.auth.Public().(ed25519.PublicKey)) {
			t.Fatalf("class %d: %v", c, err)
		}
		chunk := func(n int) FileCommand { return FileCommand{Kind: AnsCHUNK, Data: make([]byte, n)} }
		// Every ERR fits every class, and is padded to its size.
		for _, code := range AllCodes() {
			if a, err := o.SealFileAnswer(FileCommand{Kind: AnsFERR, Code: code}); err != nil || len(a) != FileAnswerSealedSize(c) {
				t.Fatalf("class %d: ERR %s: %v", c, code, err)
			}
		}
		// The CHUNK transmission around n data bytes, with a 24-byte corrID,
		// is 1 + 1 + 24 + 1 + 24 + 6 + n = n + 57 bytes: n fits when
		// 4 + 57 + n <= FileAnswerPlainSize(c).
		// (At class 4 the CHUNK encoder's own limit, 4 MiB + 40, is the
		// tighter one.)
		room := min(FileAnswerPlainSize(c)-4-57, MaxChunkSize+ChunkSealOverhead)
		if a, err := o.SealFileAnswer(chunk(room)); err != nil || len(a) != FileAnswerSealedSize(c) {
			t.Fatalf("class %d: CHUNK of %d bytes: %v", c, room, err)
		}
		if _, err := o.SealFileAnswer(chunk(room + 1)); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("class %d: CHUNK of %d bytes: %v", c, room+1, err)
		}
		if c == ClassControl {
			if _, err := o.SealFileAnswer(chunk(Class64K.Size() + ChunkSealOverhead)); !errors.Is(err, ErrTooLarge) {
				t.Errorf("a 64 KiB CHUNK at class 0: %v", err)
			}
			continue
		}
		// The class's own chunk fits; the next class's does not.
		if a, err := o.SealFileAnswer(chunk(c.Size() + ChunkSealOverhead)); err != nil || len(a) != FileAnswerSealedSize(c) {
			t.Fatalf("class %d: its own chunk: %v", c, err)
		}
		if c < Class4M {
			if _, err := o.SealFileAnswer(chunk((c + 1).Size() + ChunkSealOverhead)); !errors.Is(err, ErrTooLarge) {
				t.Errorf("class %d: a class-%d CHUNK: %v", c, c+1, err)
			}
		}
	}
	// The vectors' case: a 256 KiB chunk into the 64 KiB class asked for.
	if _, err := x.oget.SealFileAnswer(FileCommand{Kind: AnsCHUNK, Data: make([]byte, Class256K.Size()+ChunkSealOverhead)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a 256 KiB CHUNK for a 64 KiB FGET: %v", err)
	}
	// An answer that does not encode at all.
	if _, err := x.oget.SealFileAnswer(FileCommand{Kind: AnsCHUNK, Data: make([]byte, MaxChunkSize+ChunkSealOverhead+1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("an oversized CHUNK: %v", err)
	}
	if _, err := x.oget.SealFileAnswer(FileCommand{Kind: AnsFERR}); !errors.Is(err, ErrCommand) {
		t.Errorf("ERR without a code: %v", err)
	}
}

// TestFileForwardClassValues: classes other than 0..4 are refused
// everywhere a class is read or written.
func TestFileForwardClassValues(t *testing.T) {
	x := newFFFixture(t)
	layered, err := SealLayer(bytes.NewReader(seq(24, 0x24)), x.layer, append(x.fget.Eph[:], x.fget.Sealed...))
	if err != nil {
		t.Fatal(err)
	}
	pfwd := FileCommand{Kind: CmdFPFWD, Data: x.fget.Sealed}
	pfwd.Fwd.DHKey = x.fget.Eph
	rfwd := FileCommand{Kind: CmdFRFWD, Data: layered}
	pfwdRaw, err := appendFileCommand(nil, &pfwd)
	if err != nil {
		t.Fatal(err)
	}
	rfwdRaw, err := appendFileCommand(nil, &rfwd)
	if err != nil {
		t.Fatal(err)
	}
	for v := range 256 {
		c := ChunkClass(v)
		valid := v <= 4
		if _, err := NewFileForward(rand.Reader, x.fwd, c, &x.get, x.rcpt.auth); (err == nil) != valid || (!valid && !errors.Is(err, ErrCommand)) {
			t.Fatalf("NewFileForward class %d: %v", v, err)
		}
		if f, err := OpenFileForward(x.fwdPriv, c, x.fget.Eph, x.fget.Sealed); (err == nil) != valid || (!valid && (!errors.Is(err, ErrCommand) || f != nil)) {
			t.Fatalf("OpenFileForward class %d: %v", v, err)
		}
		for _, k := range []struct {
			cmd FileCommand
			raw []byte
		}{{pfwd, pfwdRaw}, {rfwd, rfwdRaw}} {
			k.cmd.Class = c
			if _, err := appendFileCommand(nil, &k.cmd); (err == nil) != valid || (!valid && !errors.Is(err, ErrCommand)) {
				t.Fatalf("%s encoded with class %d: %v", k.cmd.Kind, v, err)
			}
			b := bytes.Clone(k.raw)
			b[5] = byte(v)
			got, err := ParseFileCommand(b)
			if (err == nil) != valid || (!valid && !errors.Is(err, ErrCommand)) || (valid && got.Class != c) {
				t.Fatalf("%s parsed with class %d: %v", k.cmd.Kind, v, err)
			}
		}
	}
	// No PRES or RRES size names a class other than 0..4.
	for _, k := range []FileKind{AnsFPRES, AnsFRRES} {
		for _, c := range append([]ChunkClass{ClassControl}, Classes()...) {
			n := FileAnswerSealedSize(c)
			if k == AnsFRRES {
				n += LayerOverhead
			}
			for _, m := range []int{n - 1, n, n + 1} {
				got, ok := AnswerClass(k, m)
				if ok != (m == n) || (ok && got != c) {
					t.Fatalf("AnswerClass(%s, %d) = %d, %v", k, m, got, ok)
				}
			}
		}
		for _, m := range []int{0, 1, 128, 143, 145, 183, 185, 256, 272, 344} {
			if c, ok := AnswerClass(k, m); ok {
				t.Fatalf("AnswerClass(%s, %d) = %d", k, m, c)
			}
		}
	}
}

func TestPadWide(t *testing.T) {
	// Every length from empty to an exact fit round-trips; one more byte
	// is ErrTooLarge.
	for size := 4; size <= 40; size++ {
		for n := 0; n <= size-4; n++ {
			m := seq(n, 1)
			p, err := padWide(m, size)
			if err != nil || len(p) != size || binary.BigEndian.Uint32(p) != uint32(n) || !bytes.Equal(p[4:4+n], m) || !allZero(p[4+n:]) {
				t.Fatalf("padWide(%d, %d): %v", n, size, err)
			}
			if got, err := unpadWide(p); err != nil || !bytes.Equal(got, m) {
				t.Fatalf("unpadWide of %d into %d: %v", n, size, err)
			}
		}
		if _, err := padWide(make([]byte, size-3), size); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("padWide one past %d: %v", size, err)
		}
	}
	// Sizes with no room for the length: an error, never a panic.
	for size := -1; size < 4; size++ {
		if _, err := padWide(nil, size); !errors.Is(err, ErrTooLarge) {
			t.Errorf("padWide into %d: %v", size, err)
		}
	}
	// The frame-size answers: a chunk of the class and its CHUNK fit.
	for _, c := range Classes() {
		if _, err := padWide(make([]byte, c.Size()+97), FileAnswerPlainSize(c)); err != nil {
			t.Errorf("class %d: %v", c, err)
		}
	}
	bad := map[string][]byte{
		"nil":                        nil,
		"empty":                      {},
		"3 bytes":                    {0, 0, 0},
		"length 1 of 4 bytes":        {0, 0, 0, 1},
		"length past the end":        {0, 0, 0, 5, 'a', 'b', 'c', 'd'},
		"length 2^32-1":              {0xff, 0xff, 0xff, 0xff, 0, 0},
		"length 2^31":                {0x80, 0, 0, 0, 0, 0},
		"length in the high byte":    {1, 0, 0, 0, 'a'},
		"non-zero fill at the end":   {0, 0, 0, 1, 'a', 0, 0, 1},
		"non-zero fill after msg":    {0, 0, 0, 1, 'a', 1, 0, 0},
		"short length, data after":   {0, 0, 0, 1, 'a', 'b'},
		"zero length, data after":    {0, 0, 0, 0, 'a'},
		"2-byte length (crypto/pad)": {0, 2, 'a', 'b', 0, 0, 0, 0},
	}
	for name, b := range bad {
		if got, err := unpadWide(b); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	good := map[string]struct{ b, want []byte }{
		"4 zero bytes":       {[]byte{0, 0, 0, 0}, []byte{}},
		"zero length, fill":  {[]byte{0, 0, 0, 0, 0, 0}, []byte{}},
		"exact fit":          {[]byte{0, 0, 0, 2, 'a', 'b'}, []byte("ab")},
		"exact fit of zeros": {[]byte{0, 0, 0, 2, 0, 0}, []byte{0, 0}},
		"message, zero fill": {[]byte{0, 0, 0, 1, 'a', 0}, []byte("a")},
	}
	for name, g := range good {
		if got, err := unpadWide(g.b); err != nil || !bytes.Equal(got, g.want) {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
}

// ffCommandForm is a valid wire form of a private-routing file command
// or answer, with the byte size of its arguments.
type ffCommandForm struct {
	name string
	c    FileCommand
	args int
}

// ffCommandForms are a valid wire form of each of the eight file kinds
// of private routing (PRES and RRES of classes 0 and 1; big lists the
// larger classes too).
func ffCommandForms(t testing.TB, big bool) []ffCommandForm {
	t.Helper()
	x := newFFFixture(t)
	identity := ed25519.NewKeyFromSeed(prIdentitySeed)
	id := [KeySize]byte(identity.Public().(ed25519.PublicKey))
	sig := SignForwardKey(identity, x.fwd)
	addr := prAddress()
	fwdCmd := func(kind FileKind, q Command, pw []byte) FileCommand {
		return FileCommand{Kind: kind, Fwd: q, Password: pw}
	}
	forms := []ffCommandForm{
		{"PRXY", fwdCmd(CmdFPRXY, Command{Relay: addr}, nil), 1 + len(addr.String()) + 1},
		{"PRXY with a password", fwdCmd(CmdFPRXY, Command{Relay: addr}, bytes.Repeat([]byte("p"), MaxPasswordSize)), 1 + len(addr.String()) + 1 + MaxPasswordSize},
		{"PKEY", fwdCmd(AnsFPKEY, Command{Route: [RouteIDSize]byte(ffRouteID), Identity: id, DHKey: x.fwd, KeySig: sig}, nil), 152},
		{"RKEY", fwdCmd(CmdFRKEY, Command{DHKey: x.fwd}, nil), 32},
		{"FKEY", fwdCmd(AnsFFKEY, Command{Identity: id, DHKey: x.fwd, KeySig: sig}, nil), 128},
	}
	classes := []ChunkClass{ClassControl, Class64K}
	if big {
		classes = append([]ChunkClass{ClassControl}, Classes()...)
	}
	for _, c := range classes {
		var f *Forward
		var err error
		if f, err = newFileForward(x.getEph, x.fwd, c, &x.get, x.rcpt.auth); err != nil {
			t.Fatal(err)
		}
		o, err := OpenFileForward(x.fwdPriv, c, f.Eph, f.Sealed)
		if err != nil {
			t.Fatal(err)
		}
		ans, err := o.SealFileAnswer(FileCommand{Kind: AnsFERR, Code: CodeNoMsg})
		if err != nil {
			t.Fatal(err)
		}
		layered, err := SealLayer(bytes.NewReader(seq(24, 0x24)), x.layer, append(f.Eph[:], f.Sealed...))
		if err != nil {
			t.Fatal(err)
		}
		ansLayered, err := SealLayer(bytes.NewReader(seq(24, 0x64)), x.layer, ans)
		if err != nil {
			t.Fatal(err)
		}
		pfwd := FileCommand{Kind: CmdFPFWD, Class: c, Data: f.Sealed}
		pfwd.Fwd.DHKey = f.Eph
		n := FileAnswerSealedSize(c)
		forms = append(forms,
			ffCommandForm{fmt.Sprintf("PFWD class %d", c), pfwd, 1 + 32 + 272},
			ffCommandForm{fmt.Sprintf("RFWD class %d", c), FileCommand{Kind: CmdFRFWD, Class: c, Data: layered}, 1 + 344},
			ffCommandForm{fmt.Sprintf("PRES class %d", c), FileCommand{Kind: AnsFPRES, Data: ans}, n},
			ffCommandForm{fmt.Sprintf("RRES class %d", c), FileCommand{Kind: AnsFRRES, Data: ansLayered}, n + 40},
		)
	}
	return forms
}

func TestParseFileForwardCommands(t *testing.T) {
	for _, form := range ffCommandForms(t, true) {
		k := form.c.Kind
		raw, err := appendFileCommand(nil, &form.c)
		if err != nil {
			t.Fatalf("%s: %v", form.name, err)
		}
		if len(raw) != len(k.String())+1+form.args {
			t.Fatalf("%s: %d bytes of arguments, want %d", form.name, len(raw)-len(k.String())-1, form.args)
		}
		c, err := ParseFileCommand(raw)
		if err != nil || c.Kind != k || c.Class != form.c.Class {
			t.Fatalf("%s: %v", form.name, err)
		}
		if again, err := appendFileCommand(nil, &c); err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("%s: does not encode back: %v", form.name, err)
		}
		// Signed, in a transmission, with a 24-byte corrID and entity.
		tr := FileTransmission{CorrID: seq(MaxCorrIDSize, 1), EntityID: ffRouteID, Command: form.c}
		signed, err := tr.Sign([32]byte{}, ed25519.NewKeyFromSeed(ffQueueSeed))
		if err != nil {
			t.Fatalf("%s signed: %v", form.name, err)
		}
		if got, err := ParseFileTransmission(signed); err != nil || got.Command.Kind != k ||
			!got.Verify([32]byte{}, ed25519.NewKeyFromSeed(ffQueueSeed).Public().(ed25519.PublicKey)) {
			t.Fatalf("%s signed: %v", form.name, err)
		}
		tag := []byte(k.String())
		for name, b := range map[string][]byte{
			"empty":           nil,
			"tag only":        tag,
			"tag and space":   append(bytes.Clone(tag), ' '),
			"truncated by 1":  raw[:len(raw)-1],
			"truncated half":  raw[:len(tag)+1+form.args/2],
			"oversized by 1":  append(bytes.Clone(raw), 0),
			"oversized by 64": append(bytes.Clone(raw), make([]byte, 64)...),
			"no space":        append(bytes.Clone(tag), raw[len(tag)+1:]...),
			"lower case tag":  append(bytes.ToLower(tag), raw[len(tag):]...),
		} {
			if _, err := ParseFileCommand(b); !errors.Is(err, ErrCommand) {
				t.Errorf("%s %s: %v", form.name, name, err)
			}
			// Inside a transmission, the corrID survives for the answer.
			tr, err := ParseFileTransmission(append([]byte{0, 2, 'c', 'c', 0}, b...))
			if !errors.Is(err, ErrCommand) || string(tr.CorrID) != "cc" {
				t.Errorf("%s %s in a transmission: %v", form.name, name, err)
			}
		}
		// The queue endpoint's parser takes neither file PFWD nor RFWD
		// (a class byte, other sizes). (PRES and RRES of class 0 have the
		// queue sizes, 144 and 184, and parse as queue answers too.)
		if k == CmdFPFWD || k == CmdFRFWD {
			if _, err := ParseCommand(raw); err == nil {
				t.Errorf("%s parses as a queue command", form.name)
			}
		}
		if len(raw) > 70000 {
			continue // the bit flips below are for the smaller forms
		}
		// Bits flipped: never a panic; what parses encodes back.
		for _, at := range prPositions(len(raw)) {
			for bit := range 8 {
				i := 8*at + bit
				ffFlipAt(raw, i)
				c, err := ParseFileCommand(raw)
				if err == nil {
					again, aerr := appendFileCommand(nil, &c)
					if aerr != nil || !bytes.Equal(again, raw) {
						t.Fatalf("%s: bit %d flipped: parses as %s but does not encode back: %v", form.name, i, c.Kind, aerr)
					}
					if i < 8*(len(tag)+1) && c.Kind == k {
						t.Fatalf("%s: bit %d of the tag flipped still parses", form.name, i)
					}
				}
				ffFlipAt(raw, i)
			}
		}
	}
}

// TestFileForwardBodySizes: the fixed-size data of PFWD, RFWD, PRES and
// RRES refuse any other size when encoding, and a size of the other kind.
func TestFileForwardBodySizes(t *testing.T) {
	for _, k := range []struct {
		kind FileKind
		n    int
	}{
		{CmdFPFWD, FileForwardSealedSize}, {CmdFRFWD, FileForwardLayerSize},
		{AnsFPRES, FileAnswerSealedSize(ClassControl)}, {AnsFPRES, FileAnswerSealedSize(Class64K)},
		{AnsFRRES, FileAnswerSealedSize(ClassControl) + LayerOverhead}, {AnsFRRES, FileAnswerSealedSize(Class64K) + LayerOverhead},
	} {
		if _, err := appendFileCommand(nil, &FileCommand{Kind: k.kind, Class: Class64K, Data: make([]byte, k.n)}); err != nil {
			t.Errorf("%s with %d bytes: %v", k.kind, k.n, err)
		}
		for _, n := range []int{0, k.n - 1, k.n + 1, k.n + LayerOverhead, k.n - LayerOverhead} {
			if _, err := appendFileCommand(nil, &FileCommand{Kind: k.kind, Class: Class64K, Data: make([]byte, n)}); !errors.Is(err, ErrCommand) {
				t.Errorf("%s with %d bytes: %v", k.kind, n, err)
			}
		}
	}
	// The queue endpoint's sizes are not the file endpoint's.
	for _, n := range []int{ForwardSealedSize, AnswerSealedSize + 1, AnswerLayerSize - 1} {
		if _, err := appendFileCommand(nil, &FileCommand{Kind: CmdFPFWD, Data: make([]byte, n)}); !errors.Is(err, ErrCommand) {
			t.Errorf("PFWD with %d bytes: %v", n, err)
		}
	}
}
