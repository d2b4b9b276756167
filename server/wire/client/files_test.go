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

// TestRandomPositions: the real recipients' positions among the dummies
// are distinct, drawn from the given reader (crypto/rand in CreateChunk),
// and uniform: every position of 8 is taken about as often, and a reader
// error is reported instead of a predictable placement.
func TestRandomPositions(t *testing.T) {
	const total, n, rounds = 8, 3, 4000
	var count [total]int
	for range rounds {
		pos, err := randomPositions(rand.Reader, total, n)
		if err != nil || len(pos) != n {
			t.Fatalf("%v %v", pos, err)
		}
		seen := map[int]bool{}
		for _, p := range pos {
			if p < 0 || p >= total || seen[p] {
				t.Fatalf("positions %v", pos)
			}
			seen[p] = true
			count[p]++
		}
	}
	// Each position is expected rounds*n/total = 1500 times; the standard
	// deviation is about 33, so ±200 never fails by chance.
	for p, c := range count {
		if c < 1300 || c > 1700 {
			t.Fatalf("position %d taken %d times of %d: %v", p, c, rounds*n, count)
		}
	}
	// A reader of all 0xff bytes is rejected for m=3 (255 ≥ 255) and
	// accepted for m that divides 256: the draw never falls back to bias.
	if _, err := randomPositions(bytes.NewReader(bytes.Repeat([]byte{0xff}, 16)), 3, 1); err == nil {
		t.Fatal("a reader that runs out was not reported")
	}
	pos, err := randomPositions(bytes.NewReader([]byte{5, 1}), 4, 2)
	if err != nil || pos[0] != 1 || pos[1] != 2 {
		// m=4: 5%4=1 → swap 0,1 → [1 0 2 3]; m=3: 1%3=1 → swap 1,2 → [1 2 0 3]
		t.Fatalf("%v %v", pos, err)
	}
	for _, bad := range [][2]int{{0, 0}, {257, 1}, {4, 5}, {4, -1}} {
		if _, err := randomPositions(rand.Reader, bad[0], bad[1]); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
	if pos, err := randomPositions(rand.Reader, 128, 128); err != nil || len(pos) != 128 {
		t.Fatalf("128 of 128: %v", err)
	}
}
