package files

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
)

func newChunk(t *testing.T, s *Store, class wire.ChunkClass, created time.Time, nrcpt int) (SenderKey, []RecipientKey) {
	t.Helper()
	var k SenderKey
	_, _ = rand.Read(k[:])
	rs := make(map[RecipientKey]Recipient)
	var keys []RecipientKey
	for range nrcpt {
		var rk RecipientKey
		_, _ = rand.Read(rk[:])
		rs[rk] = Recipient{}
		keys = append(keys, rk)
	}
	if err := s.Create(k, Chunk{Class: class, Created: created}, rs); err != nil {
		t.Fatal(err)
	}
	return k, keys
}

// TestExpireOrder: the sweep deletes oldest first, at most limit per
// call, and nothing that is not due.
func TestExpireOrder(t *testing.T) {
	s, err := OpenStore(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Unix(1_800_000_000, 0)
	var ks []SenderKey
	for i := range 5 {
		k, _ := newChunk(t, s, wire.Class64K, base.Add(time.Duration(i)*time.Hour), 1)
		ks = append(ks, k)
	}
	if n, err := s.Expire(base.Add(3*time.Hour), 2); err != nil || n != 2 {
		t.Fatalf("first pass: %d %v", n, err)
	}
	for i, k := range ks {
		_, err := s.BySender(k)
		if gone := errors.Is(err, ErrNotFound); gone != (i < 2) {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	if n, err := s.Expire(base.Add(3*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("second pass: %d %v", n, err)
	}
	if used, n, _ := s.Usage(); n != 2 || used != 2*int64(wire.Class64K.Size()) {
		t.Fatalf("usage %d %d", used, n)
	}
}

func TestStoreErrors(t *testing.T) {
	s, err := OpenStore(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, rks := newChunk(t, s, wire.Class64K, time.Time{}, 2)
	var missing SenderKey
	if err := s.Put(missing, make([]byte, 65536)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("put missing: %v", err)
	}
	for _, n := range []int{0, 65535, 65537} {
		if err := s.Put(k, make([]byte, n)); !errors.Is(err, ErrSize) {
			t.Fatalf("put %d bytes: %v", n, err)
		}
	}
	c, _ := s.BySender(k)
	if _, err := s.Read(&c); !errors.Is(err, ErrNotReady) {
		t.Fatalf("read before put: %v", err)
	}
	data := bytes.Repeat([]byte{7}, 65536)
	if err := s.Put(k, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(RecipientKey{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ack missing: %v", err)
	}
	if err := s.Create(k, Chunk{Class: wire.Class64K}, map[RecipientKey]Recipient{{1}: {}}); err == nil {
		t.Fatal("duplicate sender key")
	}
	if err := s.Create(missing, Chunk{Class: wire.Class64K}, map[RecipientKey]Recipient{rks[0]: {}}); err == nil {
		t.Fatal("duplicate recipient key")
	}
	if err := s.Create(missing, Chunk{Class: wire.ClassControl}, map[RecipientKey]Recipient{{2}: {}}); err == nil {
		t.Fatal("control class")
	}
	if err := s.Create(missing, Chunk{Class: wire.Class64K}, nil); err == nil {
		t.Fatal("no recipients")
	}
	if _, err := unmarshalChunk([]byte{1, 2}); err == nil {
		t.Fatal("short record")
	}
	rec := c.marshal()
	rec[0] = 9
	if _, err := unmarshalChunk(rec); err == nil {
		t.Fatal("record version")
	}
}
