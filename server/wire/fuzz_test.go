package wire

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

// FuzzSplitBlock: the block decoder never panics, and whatever it accepts
// re-encodes to the same payload.
func FuzzSplitBlock(f *testing.F) {
	var b BlockBuilder
	b.Add([]byte("x"))
	b.Add(bytes.Repeat([]byte{1}, 300))
	f.Add(bytes.TrimRight(b.Payload(), "\x00"))
	f.Add([]byte{1, 0, 1, 'a'})
	f.Add([]byte{2, 0, 1, 'a', 0, 2, 'b', 'c'})
	f.Add([]byte{255, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, prefix []byte) {
		if len(prefix) > BlockPayloadSize {
			return
		}
		p := make([]byte, BlockPayloadSize)
		copy(p, prefix)
		ts, err := SplitBlock(p)
		if err != nil {
			return
		}
		var out BlockBuilder
		for _, tr := range ts {
			if !out.Add(tr) {
				t.Fatal("accepted block does not re-encode")
			}
		}
		if !bytes.Equal(out.Payload(), p) {
			t.Fatal("re-encoded block differs")
		}
	})
}

// FuzzParseTransmission: the transmission and command parser never
// panics, and every accepted transmission re-encodes byte for byte.
func FuzzParseTransmission(f *testing.F) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	ent := make([]byte, IDSize)
	for _, cmd := range []Command{{Kind: CmdSUB}, {Kind: CmdSEND, Body: []byte("hi")}, {Kind: CmdNEW, Password: []byte("pw")}, {Kind: AnsERR, Code: CodeAuth}, {Kind: CmdACK}} {
		tr := Transmission{CorrID: []byte("1"), EntityID: ent, Command: cmd}
		raw, _ := tr.Sign([32]byte{}, key)
		f.Add(raw)
		raw, _ = tr.Marshal()
		f.Add(raw)
	}
	f.Add([]byte{0, 0, 0, 'P', 'I', 'N', 'G'})
	for _, raw := range prFuzzTransmissions(f) { // private routing (forward_fuzz_test.go)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ParseTransmission(b)
		if err != nil {
			return
		}
		_ = tr.Verify([32]byte{}, key.Public().(ed25519.PublicKey))
		unsigned, err := tr.appendUnsigned(nil)
		if err != nil {
			t.Fatalf("accepted transmission does not re-encode: %v", err)
		}
		prefix := []byte{0}
		if tr.Signature != nil {
			prefix = append([]byte{SignatureSize}, tr.Signature...)
		}
		if !bytes.Equal(append(prefix, unsigned...), b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", append(prefix, unsigned...), b)
		}
	})
}

// FuzzHandshake: parsing a client hello or a relay hello never panics and
// never accepts a relay hello not signed by the expected identity.
func FuzzHandshake(f *testing.F) {
	id := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	kh := HashIdentity(id.Public().(ed25519.PublicKey))
	hs, hello, _ := NewClientHandshake(kh)
	ch, _ := ParseClientHello(hello)
	_, rh, _ := RelayRespond(id, SupportedVersions(), ch)
	f.Add(bytes.TrimRight(hello, "\x00"))
	f.Add(bytes.TrimRight(rh, "\x00"))
	f.Add([]byte("wisp\x02"))
	f.Fuzz(func(t *testing.T, prefix []byte) {
		if len(prefix) > BlockSize {
			return
		}
		b := make([]byte, BlockSize)
		copy(b, prefix)
		_, _ = ParseClientHello(b)
		if _, _, err := hs.Finish(b, SupportedVersions()); err == nil && !bytes.Equal(b, rh) {
			t.Fatal("accepted a relay hello that is not the relay's")
		}
	})
}
