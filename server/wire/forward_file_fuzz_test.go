package wire

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets of private routing on the file endpoint (SPEC.md §12.6).
// The keys are those of forward_file_vectors.json, so the seeds hold
// genuine sealed inputs.

// FuzzOpenFileForward: the destination's opening of RFWD's contents never
// panics, and what it does not refuse can be answered. b is opened as it
// is: class (1) || ephemeral key (32) || sealed command. plain is sealed
// with the FACK's request key first (when it fits the padded size): it
// must open, re-encode byte for byte when it parses, and the sealed ERR
// must open for the client that sent the IDs it echoes.
func FuzzOpenFileForward(f *testing.F) {
	x := newFFFixture(f)
	for _, s := range ffForwardSeeds(f)["FuzzOpenFileForward"] {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, b, plain []byte) {
		class := ClassControl
		if len(b) > 0 {
			class, b = ChunkClass(b[0]), b[1:]
		}
		var eph [KeySize]byte
		n := copy(eph[:], b)
		opened, err := OpenFileForward(x.fwdPriv, class, eph, b[n:])
		if opened == nil {
			if err == nil {
				t.Fatal("nil without an error")
			}
		} else {
			if errors.Is(err, ErrDecrypt) || (!class.Valid() && class != ClassControl) {
				t.Fatalf("a Forwarded of class %d with %v", class, err)
			}
			if a, err := opened.SealFileAnswer(ffErr(CodeCmd)); err != nil || len(a) != FileAnswerSealedSize(class) {
				t.Fatalf("SealFileAnswer: %v", err)
			}
		}

		if len(plain) > FileForwardPlainSize-4 {
			return
		}
		sealed, err := sealOnce(&x.oack.keys.req, plain, FileForwardPlainSize, true)
		if err != nil {
			t.Fatal(err)
		}
		opened, err = OpenFileForward(x.fwdPriv, ClassControl, x.fack.Eph, sealed)
		if opened == nil {
			t.Fatalf("did not open: %v", err)
		}
		if opened.SessionID != x.oack.SessionID || errors.Is(err, ErrDecrypt) {
			t.Fatalf("signature binding or %v", err)
		}
		if err == nil {
			tr := opened.FT
			again, err := tr.appendTo(nil, tr.Signature != nil)
			if err != nil {
				t.Fatalf("accepted transmission does not encode: %v", err)
			}
			if tr.Signature != nil {
				copy(again[1:], tr.Signature)
				again[0] = SignatureSize
			}
			if !bytes.Equal(again, plain) {
				t.Fatal("accepted transmission encodes differently")
			}
			_ = tr.Verify(opened.SessionID, x.rcpt.auth.Public().(ed25519.PublicKey))
		}
		ans, err := opened.SealFileAnswer(ffErr(CodeProhibited))
		if err != nil || len(ans) != FileAnswerSealedSize(ClassControl) {
			t.Fatalf("SealFileAnswer: %v", err)
		}
		// The client that sent these IDs (same ephemeral key, so the same
		// keys) opens the answer.
		corr, ent := answerIDs(opened.FT.CorrID, opened.FT.EntityID)
		cf, err := newFileForward(x.ackEph, x.fwd, ClassControl, &FileTransmission{CorrID: corr, EntityID: ent, Command: FileCommand{Kind: CmdFACK}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := cf.OpenFileAnswer(ans); err != nil || c.Kind != AnsFERR || c.Code != CodeProhibited {
			t.Fatalf("OpenFileAnswer: %v %+v", err, c)
		}
	})
}

// ffErr is an ERR answer of the file protocol.
func ffErr(code ErrCode) FileCommand { return FileCommand{Kind: AnsFERR, Code: code} }

// FuzzOpenFileAnswer: the client's opening of a sealed answer never
// panics and accepts only an answer to its own command, for the FGET
// (class 1) and the FACK (class 0). sealed is opened as it is; plain is
// sealed with each command's answer key at its class's size first, and
// must open exactly when it is an unsigned answer with the command's
// corrID and entity ID.
func FuzzOpenFileAnswer(f *testing.F) {
	x := newFFFixture(f)
	for _, s := range ffForwardSeeds(f)["FuzzOpenFileAnswer"] {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, sealed, plain []byte) {
		for _, c := range x.cases() {
			if got, err := c.f.OpenFileAnswer(sealed); err == nil && !bytes.Equal(sealed, c.answer) {
				t.Fatalf("%s: opened an answer the destination did not seal: %+v", c.name, got)
			}
			size := FileAnswerPlainSize(c.class)
			if len(plain) > size-4 {
				continue
			}
			s, err := sealOnce(&c.o.keys.ans, plain, size, true)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.f.OpenFileAnswer(s)
			tr, perr := ParseFileTransmission(plain)
			want := perr == nil && tr.Signature == nil && bytes.Equal(tr.CorrID, c.t.CorrID) &&
				bytes.Equal(tr.EntityID, c.t.EntityID) && !tr.Command.Kind.FromClient()
			if (err == nil) != want {
				t.Fatalf("%s: OpenFileAnswer: %v, want success %v", c.name, err, want)
			}
			if err == nil && got.Kind != tr.Command.Kind {
				t.Fatalf("%s: OpenFileAnswer gave %s, want %s", c.name, got.Kind, tr.Command.Kind)
			}
		}
	})
}

// ffFuzzTransmissions are one valid transmission of each private-routing
// file kind, for FuzzParseFileTransmission's seeds: PRXY signed (the
// queue proof), the others unsigned; PRES and RRES of class 0, which keeps
// the corpus small.
func ffFuzzTransmissions(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	seen := map[FileKind]bool{}
	for _, form := range ffCommandForms(t, false) {
		k := form.c.Kind
		if seen[k] {
			continue
		}
		seen[k] = true
		tr := FileTransmission{CorrID: []byte("1"), Command: form.c}
		var raw []byte
		var err error
		switch k {
		case CmdFPRXY:
			tr.EntityID = ffQueueRcvID
			raw, err = tr.Sign(ffProofSession, ed25519.NewKeyFromSeed(ffQueueSeed))
		case CmdFPFWD, AnsFPRES:
			tr.EntityID = ffRouteID
			raw, err = tr.Marshal()
		default:
			raw, err = tr.Marshal()
		}
		if err != nil {
			t.Fatal(k, err)
		}
		out = append(out, raw)
	}
	if len(out) != 8 {
		t.Fatalf("%d kinds", len(out))
	}
	return out
}

// ffForwardSeeds is the committed seed corpus of the targets above and
// FuzzParseFileTransmission's private-routing seeds: each entry is the
// values of one corpus file.
func ffForwardSeeds(t testing.TB) map[string][][][]byte {
	t.Helper()
	x := newFFFixture(t)
	one := func(bs ...[]byte) [][][]byte {
		var out [][][]byte
		for _, b := range bs {
			out = append(out, [][]byte{b})
		}
		return out
	}
	rfwd := func(c ChunkClass, f *Forward) []byte {
		return append(append([]byte{byte(c)}, f.Eph[:]...), f.Sealed...)
	}
	innerGet, err := x.get.Sign(x.oget.SessionID, x.rcpt.auth)
	if err != nil {
		t.Fatal(err)
	}
	innerAck, err := x.ack.Sign(x.oack.SessionID, x.rcpt.auth)
	if err != nil {
		t.Fatal(err)
	}
	answer := func(c *FileTransmission, cmd FileCommand) []byte {
		return mustMarshalFile(t, FileTransmission{CorrID: c.CorrID, EntityID: c.EntityID, Command: cmd})
	}
	return map[string][][][]byte{
		"FuzzOpenFileForward": {
			{rfwd(Class64K, x.fget), innerAck},
			{rfwd(ClassControl, x.fack), innerGet},
			{rfwd(Class64K, x.fget)[:1+KeySize+100], []byte{0, 1, 'c', 0, 'F', 'G', 'E', 'T'}},
			{rfwd(5, x.fack), []byte{0, 1, 'c', 5}},
			{[]byte{}, []byte{}},
		},
		"FuzzOpenFileAnswer": {
			{x.ackAnswer, answer(&x.ack, FileCommand{Kind: AnsFOK})},
			{x.getAnswer[:100], answer(&x.get, FileCommand{Kind: AnsCHUNK, Data: seq(ChunkSealOverhead+10, 0)})},
			{[]byte{}, answer(&x.get, FileCommand{Kind: AnsFERR, Code: CodeNoMsg})},
			{x.ackAnswer[:AnswerSealedSize-1], mustMarshalFile(t, FileTransmission{CorrID: []byte("other"), EntityID: x.ack.EntityID, Command: FileCommand{Kind: AnsFOK}})},
		},
		"FuzzParseFileTransmission": one(ffFuzzTransmissions(t)...),
	}
}

// TestFileForwardFuzzSeeds checks that testdata/fuzz holds the seeds of
// ffForwardSeeds; -update writes them.
func TestFileForwardFuzzSeeds(t *testing.T) {
	for target, seeds := range ffForwardSeeds(t) {
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
				t.Errorf("%s: seed missing or different (run go test -run TestFileForwardFuzzSeeds -update): %v", path, err)
			}
		}
	}
	// The eight seeds of FuzzParseFileTransmission parse and encode back,
	// as that target requires.
	for _, raw := range ffFuzzTransmissions(t) {
		tr, err := ParseFileTransmission(raw)
		if err != nil {
			t.Fatalf("%q: %v", raw[:20], err)
		}
		out, err := tr.appendTo(nil, tr.Signature != nil)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Signature != nil {
			copy(out[1:], tr.Signature)
			out[0] = SignatureSize
		}
		if !bytes.Equal(out, raw) {
			t.Fatalf("%s does not encode back", tr.Command.Kind)
		}
	}
}
