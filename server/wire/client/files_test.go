package client

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/wisp-chat/wisp/server/wire"
)

func TestPaddedRecipients(t *testing.T) {
	for n, want := range map[int]int{0: 1, 1: 1, 2: 2, 3: 4, 5: 8, 64: 64, 65: 128, 128: 128} {
		if got := PaddedRecipients(n); got != want {
			t.Fatalf("PaddedRecipients(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestChunkRecords: sender and recipient records round-trip, and every
// truncated, extended or wrongly classed encoding is refused.
func TestChunkRecords(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s := SenderChunk{Class: wire.Class1M, Key: key}
	_, _ = rand.Read(s.SndID[:])
	r := RecipientChunk{Class: wire.Class64K, Key: key}
	_, _ = rand.Read(r.RcvID[:])
	_, _ = rand.Read(r.BoxKey[:])
	sb, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(sb) != 57 || len(rb) != 89 {
		t.Fatalf("sizes %d %d", len(sb), len(rb))
	}
	s2, err := UnmarshalSenderChunk(sb)
	if err != nil || s2.Class != s.Class || s2.SndID != s.SndID || !s2.Key.Equal(s.Key) {
		t.Fatalf("sender round trip: %v", err)
	}
	r2, err := UnmarshalRecipientChunk(rb)
	if err != nil || r2.Class != r.Class || r2.RcvID != r.RcvID || !r2.Key.Equal(r.Key) || r2.BoxKey != r.BoxKey {
		t.Fatalf("recipient round trip: %v", err)
	}
	for _, b := range [][]byte{nil, sb[:56], append(bytes.Clone(sb), 0), append([]byte{0}, sb[1:]...), append([]byte{9}, sb[1:]...)} {
		if _, err := UnmarshalSenderChunk(b); !errors.Is(err, ErrChunkEncoding) {
			t.Fatalf("sender record %x: %v", b, err)
		}
	}
	for _, b := range [][]byte{nil, rb[:88], append(bytes.Clone(rb), 0), append([]byte{0}, rb[1:]...)} {
		if _, err := UnmarshalRecipientChunk(b); !errors.Is(err, ErrChunkEncoding) {
			t.Fatalf("recipient record: %v", err)
		}
	}
	if _, err := (SenderChunk{Class: wire.Class1M}).MarshalBinary(); !errors.Is(err, ErrChunkEncoding) {
		t.Fatal("sender record without a key")
	}
	if _, err := (RecipientChunk{Key: key}).MarshalBinary(); !errors.Is(err, ErrChunkEncoding) {
		t.Fatal("recipient record without a class")
	}
}

// TestRecipientBoxKey: the recipient's box key from FIDS opens what the
// relay seals with its side of the key agreement.
func TestRecipientBoxKey(t *testing.T) {
	keys, err := NewRecipientKeys()
	if err != nil {
		t.Fatal(err)
	}
	relayKeys, _ := NewRecipientKeys()
	id := wire.ChunkRecipientID{RelayDH: [32]byte(relayKeys.DH.PublicKey().Bytes())}
	rc := recipientChunk(wire.Class64K, id, keys)
	relaySide := wire.BoxKey((*[32]byte)(keys.DH.PublicKey().Bytes()), (*[32]byte)(relayKeys.DH.Bytes()))
	sealed, err := wire.SealChunk(relaySide, []byte("chunk"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := wire.OpenChunk(&rc.BoxKey, sealed); err != nil || string(got) != "chunk" {
		t.Fatalf("open: %q %v", got, err)
	}
}
