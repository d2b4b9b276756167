package files

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	bolt "go.etcd.io/bbolt"
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
	if used, n, _ := s.Usage(); n != 2 || used != 2*MetadataCost(1) {
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

// TestStoreQuotaAccounting: FNEW charges the records, Put the bytes (and
// ErrQuota leaves nothing), Delete gives both back, and FACK before the
// upload is ErrNotReady and changes nothing.
func TestStoreQuotaAccounting(t *testing.T) {
	size := int64(wire.Class64K.Size())
	s, err := OpenStore(t.TempDir(), size+2*MetadataCost(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, ars := newChunk(t, s, wire.Class64K, time.Time{}, 2)
	b, _ := newChunk(t, s, wire.Class64K, time.Time{}, 2)
	if used, _, _ := s.Usage(); used != 2*MetadataCost(2) {
		t.Fatalf("usage after two FNEW: %d", used)
	}
	if err := s.Ack(ars[0]); !errors.Is(err, ErrNotReady) {
		t.Fatalf("ack before put: %v", err)
	}
	if c, _ := s.BySender(a); c.Remaining != 2 {
		t.Fatalf("ack before put changed the chunk: %d recipients left", c.Remaining)
	}
	if err := s.Put(a, bytes.Repeat([]byte{1}, int(size))); err != nil {
		t.Fatal(err)
	}
	var k SenderKey
	_, _ = rand.Read(k[:])
	if err := s.Create(k, Chunk{Class: wire.Class64K}, map[RecipientKey]Recipient{{3}: {}}); !errors.Is(err, ErrQuota) {
		t.Fatalf("records over quota: %v", err)
	}
	if err := s.Put(b, bytes.Repeat([]byte{2}, int(size))); !errors.Is(err, ErrQuota) {
		t.Fatalf("bytes over quota: %v", err)
	}
	if c, _ := s.BySender(b); c.Uploaded {
		t.Fatal("refused put recorded")
	}
	if used, n, _ := s.Usage(); used != size+2*MetadataCost(2) || n != 2 {
		t.Fatalf("usage %d %d", used, n)
	}
	if err := s.Delete(a); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(b, bytes.Repeat([]byte{2}, int(size))); err != nil {
		t.Fatalf("after delete: %v", err)
	}
	if used, n, _ := s.Usage(); used != size+MetadataCost(2) || n != 1 {
		t.Fatalf("usage %d %d", used, n)
	}
}

// TestExpireUnfilled deletes only chunks not uploaded, oldest first.
func TestExpireUnfilled(t *testing.T) {
	s, err := OpenStore(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Unix(1_800_000_000, 0)
	var ks []SenderKey
	for i := range 4 {
		k, _ := newChunk(t, s, wire.Class64K, base.Add(time.Duration(i)*time.Minute), 1)
		ks = append(ks, k)
	}
	if err := s.Put(ks[0], make([]byte, wire.Class64K.Size())); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireUnfilled(base.Add(2*time.Minute), 10); err != nil || n != 1 {
		t.Fatalf("first pass: %d %v", n, err)
	}
	for i, k := range ks {
		_, err := s.BySender(k)
		if gone := errors.Is(err, ErrNotFound); gone != (i == 1) {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	if n, err := s.ExpireUnfilled(base.Add(time.Hour), 10); err != nil || n != 2 {
		t.Fatalf("second pass: %d %v", n, err)
	}
	if used, n, _ := s.Usage(); n != 1 || used != int64(wire.Class64K.Size())+MetadataCost(1) {
		t.Fatalf("usage %d %d", used, n)
	}
}

// TestRecount: a store written by the first accounting (which charged
// the class size at FNEW and had no index of unfilled chunks) is
// recounted once when opened.
func TestRecount(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	up, _ := newChunk(t, s, wire.Class64K, time.Time{}, 2)
	newChunk(t, s, wire.Class256K, time.Unix(1_800_000_000, 0), 4)
	if err := s.Put(up, make([]byte, wire.Class64K.Size())); err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{keyAccounting, keyBytes} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		if err := meta.Put(keyUsedV1, binary.BigEndian.AppendUint64(nil, uint64(wire.Class64K.Size()+wire.Class256K.Size()))); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketUnfilled)
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if s, err = OpenStore(dir, 1<<30); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := int64(wire.Class64K.Size()) + MetadataCost(2) + MetadataCost(4)
	if used, n, _ := s.Usage(); used != want || n != 2 {
		t.Fatalf("recounted usage %d %d, want %d", used, n, want)
	}
	if n, err := s.ExpireUnfilled(time.Unix(1_800_000_001, 0), 10); err != nil || n != 1 {
		t.Fatalf("unfilled chunk of the old store: %d %v", n, err)
	}
}
