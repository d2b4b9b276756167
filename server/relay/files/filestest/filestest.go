// Package filestest is the conformance suite of files.Backend: the bbolt
// store (files.Store) and the PostgreSQL store (pgfiles.Store) run the
// same tests, so that the file endpoint behaves the same on either.
//
//	func TestConformance(t *testing.T) {
//		filestest.Run(t, func(t *testing.T, dir string, quota int64) files.Backend {
//			s, err := files.OpenStore(dir, quota)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { _ = s.Close() })
//			return s
//		})
//	}
//
// The open function is called from the subtests, which run in parallel.
// Given a directory it has not seen, it returns a new, empty store with
// that quota; given one it has seen (after the suite closed the store
// there), the same data again, as a restarted relay would. The store must
// also have the methods of Store (Usage, Close).
//
// The suite finds chunk files by their contents anywhere under the
// directory, so it assumes nothing about a backend's file layout.
package filestest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/wire"
)

// Store is what the suite needs of a backend besides files.Backend.
type Store interface {
	files.Backend
	// Usage returns the bytes charged against the quota and the number
	// of chunks.
	Usage() (used, chunks int64, err error)
	// Close closes the store; closing it again does nothing.
	Close() error
}

// Open opens a store on dir with quota: a new one for a new directory,
// the same data again for a directory it opened before.
type Open func(t *testing.T, dir string, quota int64) files.Backend

// Run runs every conformance test as a parallel subtest of t.
func Run(t *testing.T, open func(t *testing.T, dir string, quota int64) files.Backend) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, Open)
	}{
		{"CreateAndLookup", testCreateAndLookup},
		{"CreateRefused", testCreateRefused},
		{"PutAndRead", testPutAndRead},
		{"WrongSize", testWrongSize},
		{"RepeatedUpload", testRepeatedUpload},
		{"ReadBeforeUpload", testReadBeforeUpload},
		{"CorruptFile", testCorruptFile},
		{"AckByEveryRecipient", testAckByEveryRecipient},
		{"Delete", testDelete},
		{"QuotaAtCreate", testQuotaAtCreate},
		{"QuotaAtPut", testQuotaAtPut},
		{"ExpireOrder", testExpireOrder},
		{"ExpireUnfilled", testExpireUnfilled},
		{"UsageBackToZero", testUsageBackToZero},
		{"ConcurrentPutsAndAcks", testConcurrent},
		{"Closed", testClosed},
		{"Reopen", testReopen},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, open)
		})
	}
}

// bigQuota is the quota of the tests that do not test it.
const bigQuota = 1 << 30

// env is one test's store and directory.
type env struct {
	t     *testing.T
	open  Open
	dir   string
	quota int64
	s     Store
}

func newEnv(t *testing.T, open Open, quota int64) *env {
	t.Helper()
	e := &env{t: t, open: open, dir: t.TempDir(), quota: quota}
	e.s = e.must(open(t, e.dir, quota))
	return e
}

func (e *env) must(b files.Backend) Store {
	e.t.Helper()
	s, ok := b.(Store)
	if !ok {
		e.t.Fatalf("%T has no Usage and Close methods (filestest.Store)", b)
	}
	return s
}

// reopen closes the store and opens it again on its directory.
func (e *env) reopen() {
	e.t.Helper()
	if err := e.s.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.s = e.must(e.open(e.t, e.dir, e.quota))
}

type chunk struct {
	k     files.SenderKey
	rks   []files.RecipientKey
	rcpts map[files.RecipientKey]files.Recipient
	class wire.ChunkClass
}

func randKey() (k [32]byte) {
	_, _ = rand.Read(k[:])
	return k
}

// create creates a chunk of the class with n recipients, each with its
// own random Auth and BoxKey.
func (e *env) create(class wire.ChunkClass, created time.Time, n int) chunk {
	e.t.Helper()
	c := chunk{k: randKey(), rcpts: make(map[files.RecipientKey]files.Recipient), class: class}
	for range n {
		rk := files.RecipientKey(randKey())
		c.rks = append(c.rks, rk)
		c.rcpts[rk] = files.Recipient{Auth: randKey(), BoxKey: randKey()}
	}
	if err := e.s.Create(c.k, files.Chunk{Class: class, SenderAuth: randKey(), Created: created}, c.rcpts); err != nil {
		e.t.Fatalf("create: %v", err)
	}
	return c
}

func randData(class wire.ChunkClass) []byte {
	b := make([]byte, class.Size())
	_, _ = rand.Read(b)
	return b
}

// upload creates a chunk and puts random bytes.
func (e *env) upload(class wire.ChunkClass, created time.Time, n int) (chunk, []byte) {
	e.t.Helper()
	c := e.create(class, created, n)
	data := randData(class)
	if err := e.s.Put(c.k, data); err != nil {
		e.t.Fatalf("put: %v", err)
	}
	return c, data
}

func (e *env) bySender(k files.SenderKey) files.Chunk {
	e.t.Helper()
	c, err := e.s.BySender(k)
	if err != nil {
		e.t.Fatalf("by sender: %v", err)
	}
	return c
}

func (e *env) usage(used, chunks int64) {
	e.t.Helper()
	u, n, err := e.s.Usage()
	if err != nil || u != used || n != chunks {
		e.t.Fatalf("usage %d bytes, %d chunks (%v); want %d, %d", u, n, err, used, chunks)
	}
}

func (e *env) gone(k files.SenderKey) {
	e.t.Helper()
	if _, err := e.s.BySender(k); !errors.Is(err, files.ErrNotFound) {
		e.t.Fatalf("chunk still there: %v", err)
	}
}

// copies counts the files under the store's directory that hold data.
func (e *env) copies(data []byte) int {
	e.t.Helper()
	n := 0
	err := filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if info, err := d.Info(); err != nil || info.Size() != int64(len(data)) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Equal(b, data) {
			n++
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// path returns the one file under the store's directory that holds data.
func (e *env) path(data []byte) string {
	e.t.Helper()
	var found []string
	_ = filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, data) {
				found = append(found, path)
			}
		}
		return nil
	})
	if len(found) != 1 {
		e.t.Fatalf("%d files hold the chunk, want 1", len(found))
	}
	return found[0]
}

func cost(n int, class wire.ChunkClass, uploaded bool) int64 {
	c := files.MetadataCost(n)
	if uploaded {
		c += int64(class.Size())
	}
	return c
}

func sameChunk(a, b files.Chunk) bool {
	return a.Class == b.Class && a.SenderAuth == b.SenderAuth && a.Created.Equal(b.Created) &&
		a.Uploaded == b.Uploaded && a.Digest == b.Digest && a.Remaining == b.Remaining && a.File == b.File
}

// testCreateAndLookup: the records read back as created, by sender and
// by every recipient, with Created kept to the second (now when zero).
func testCreateAndLookup(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	created := time.Unix(1_800_000_000, 123_456_789)
	c := e.create(wire.Class256K, created, 3)
	ch := e.bySender(c.k)
	if ch.Class != wire.Class256K || !ch.Created.Equal(time.Unix(1_800_000_000, 0)) || ch.Uploaded ||
		ch.Remaining != 3 || ch.Digest != ([32]byte{}) {
		t.Fatalf("record %+v", ch)
	}
	for _, rk := range c.rks {
		r, rc, err := e.s.ByRecipient(rk)
		if err != nil {
			t.Fatal(err)
		}
		want := c.rcpts[rk]
		if r.Chunk != c.k || r.Auth != want.Auth || r.BoxKey != want.BoxKey {
			t.Fatal("recipient record differs")
		}
		if !sameChunk(rc, ch) {
			t.Fatalf("chunk by recipient %+v, by sender %+v", rc, ch)
		}
	}
	if _, err := e.s.BySender(randKey()); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("unknown sender: %v", err)
	}
	if _, _, err := e.s.ByRecipient(randKey()); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("unknown recipient: %v", err)
	}
	before := time.Now().Unix()
	now := e.create(wire.Class64K, time.Time{}, 1)
	after := time.Now().Unix()
	if got := e.bySender(now.k).Created.Unix(); got < before || got > after {
		t.Fatalf("zero Created became %d, not in [%d, %d]", got, before, after)
	}
	e.usage(files.MetadataCost(3)+files.MetadataCost(1), 2)
}

// testCreateRefused: a bad record, an existing key and too many
// recipients store and charge nothing; wire.MaxChunkRecipients is
// accepted.
func testCreateRefused(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	c := e.create(wire.Class64K, time.Time{}, 1)
	one := func() map[files.RecipientKey]files.Recipient {
		return map[files.RecipientKey]files.Recipient{files.RecipientKey(randKey()): {}}
	}
	many := func(n int) map[files.RecipientKey]files.Recipient {
		m := make(map[files.RecipientKey]files.Recipient)
		for range n {
			m[files.RecipientKey(randKey())] = files.Recipient{}
		}
		return m
	}
	for name, tc := range map[string]struct {
		k     files.SenderKey
		class wire.ChunkClass
		rcpts map[files.RecipientKey]files.Recipient
	}{
		"control class":      {randKey(), wire.ClassControl, one()},
		"unknown class":      {randKey(), wire.ChunkClass(9), one()},
		"no recipients":      {randKey(), wire.Class64K, nil},
		"too many":           {randKey(), wire.Class64K, many(wire.MaxChunkRecipients + 1)},
		"existing sender":    {c.k, wire.Class64K, one()},
		"existing recipient": {randKey(), wire.Class64K, map[files.RecipientKey]files.Recipient{c.rks[0]: {}, files.RecipientKey(randKey()): {}}},
	} {
		err := e.s.Create(tc.k, files.Chunk{Class: tc.class}, tc.rcpts)
		if err == nil {
			t.Fatalf("%s: created", name)
		}
		for rk := range tc.rcpts {
			if r, _, err := e.s.ByRecipient(rk); rk != c.rks[0] && !errors.Is(err, files.ErrNotFound) {
				t.Fatalf("%s: a recipient was stored: %v", name, err)
			} else if rk == c.rks[0] && (err != nil || r.Chunk != c.k) {
				t.Fatalf("%s: the existing recipient changed: %v", name, err)
			}
		}
		if tc.k != c.k {
			e.gone(tc.k)
		}
		e.usage(files.MetadataCost(1), 1)
	}
	if e.bySender(c.k).Remaining != 1 {
		t.Fatal("the existing chunk changed")
	}
	full := files.SenderKey(randKey())
	if err := e.s.Create(full, files.Chunk{Class: wire.Class64K}, many(wire.MaxChunkRecipients)); err != nil {
		t.Fatalf("%d recipients: %v", wire.MaxChunkRecipients, err)
	}
	if ch := e.bySender(full); ch.Remaining != wire.MaxChunkRecipients {
		t.Fatalf("%d recipients left", ch.Remaining)
	}
	e.usage(files.MetadataCost(1)+files.MetadataCost(wire.MaxChunkRecipients), 2)
}

// testPutAndRead: every class round-trips, through the records of both
// lookups, with the digest of its bytes, in exactly one file.
func testPutAndRead(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	var used int64
	for i, class := range wire.Classes() {
		c, data := e.upload(class, time.Time{}, 2)
		used += cost(2, class, true)
		ch := e.bySender(c.k)
		if !ch.Uploaded || ch.Digest != sha256.Sum256(data) || ch.Remaining != 2 {
			t.Fatalf("%v: record after put: uploaded %v, remaining %d", class, ch.Uploaded, ch.Remaining)
		}
		_, rc, err := e.s.ByRecipient(c.rks[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []files.Chunk{ch, rc} {
			got, err := e.s.Read(&r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%v: read: %v", class, err)
			}
		}
		if n := e.copies(data); n != 1 {
			t.Fatalf("%v: %d files hold the chunk", class, n)
		}
		e.usage(used, int64(i+1))
	}
	if err := e.s.Put(randKey(), make([]byte, wire.Class64K.Size())); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("put without chunk: %v", err)
	}
}

// testWrongSize: every length but the class size is ErrSize and stores
// nothing.
func testWrongSize(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	c := e.create(wire.Class256K, time.Time{}, 1)
	size := wire.Class256K.Size()
	for _, n := range []int{0, 1, size - 1, size + 1, wire.Class64K.Size(), wire.Class1M.Size()} {
		if err := e.s.Put(c.k, make([]byte, n)); !errors.Is(err, files.ErrSize) {
			t.Fatalf("put of %d bytes: %v", n, err)
		}
	}
	if e.bySender(c.k).Uploaded {
		t.Fatal("a wrong size was recorded")
	}
	e.usage(files.MetadataCost(1), 1)
	data := randData(wire.Class256K)
	if err := e.s.Put(c.k, data); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Put(c.k, data[:size-1]); !errors.Is(err, files.ErrSize) {
		t.Fatalf("short put after upload: %v", err)
	}
	e.usage(cost(1, wire.Class256K, true), 1)
}

// testRepeatedUpload: the same bytes again succeed and charge nothing,
// other bytes are ErrUploaded and change nothing.
func testRepeatedUpload(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	c, data := e.upload(wire.Class64K, time.Time{}, 1)
	before := e.bySender(c.k)
	for range 3 {
		if err := e.s.Put(c.k, bytes.Clone(data)); err != nil {
			t.Fatalf("same bytes again: %v", err)
		}
	}
	other := bytes.Clone(data)
	other[len(other)-1] ^= 1
	if err := e.s.Put(c.k, other); !errors.Is(err, files.ErrUploaded) {
		t.Fatalf("other bytes: %v", err)
	}
	after := e.bySender(c.k)
	if !sameChunk(before, after) {
		t.Fatalf("record changed: %+v, then %+v", before, after)
	}
	if got, err := e.s.Read(&after); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v", err)
	}
	if e.copies(data) != 1 || e.copies(other) != 0 {
		t.Fatal("files of the repeated uploads")
	}
	e.usage(cost(1, wire.Class64K, true), 1)
}

// testReadBeforeUpload: Read and Ack are ErrNotReady before the upload,
// and the Ack changes nothing.
func testReadBeforeUpload(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	c := e.create(wire.Class64K, time.Time{}, 2)
	ch := e.bySender(c.k)
	if _, err := e.s.Read(&ch); !errors.Is(err, files.ErrNotReady) {
		t.Fatalf("read: %v", err)
	}
	if err := e.s.Ack(c.rks[0]); !errors.Is(err, files.ErrNotReady) {
		t.Fatalf("ack: %v", err)
	}
	if _, _, err := e.s.ByRecipient(c.rks[0]); err != nil {
		t.Fatalf("the recipient went: %v", err)
	}
	if ch := e.bySender(c.k); ch.Remaining != 2 {
		t.Fatalf("%d recipients left", ch.Remaining)
	}
	e.usage(files.MetadataCost(2), 1)
	// A record read before the upload stays not ready.
	data := randData(wire.Class64K)
	if err := e.s.Put(c.k, data); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Read(&ch); !errors.Is(err, files.ErrNotReady) {
		t.Fatalf("read of the old record: %v", err)
	}
}

// testCorruptFile: changed, truncated or removed bytes on disk are
// ErrCorrupt (ErrNotFound when removed), never returned.
func testCorruptFile(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	c, data := e.upload(wire.Class64K, time.Time{}, 1)
	ch := e.bySender(c.k)
	path := e.path(data)
	flipped := bytes.Clone(data)
	flipped[12345] ^= 0x80
	if err := os.WriteFile(path, flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := e.s.Read(&ch); !errors.Is(err, files.ErrCorrupt) || b != nil {
		t.Fatalf("changed byte: %v", err)
	}
	if err := os.WriteFile(path, data[:len(data)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Read(&ch); !errors.Is(err, files.ErrCorrupt) {
		t.Fatalf("truncated: %v", err)
	}
	if err := os.WriteFile(path, append(bytes.Clone(data), 0), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Read(&ch); !errors.Is(err, files.ErrCorrupt) {
		t.Fatalf("extended: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Read(&ch); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("removed: %v", err)
	}
	// The chunk can still be deleted.
	if err := e.s.Delete(c.k); err != nil {
		t.Fatal(err)
	}
	e.usage(0, 0)
}

// testAckByEveryRecipient: each Ack removes its recipient once; the last
// deletes the chunk, its recipients and its file.
func testAckByEveryRecipient(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	c, data := e.upload(wire.Class1M, time.Time{}, 3)
	other, otherData := e.upload(wire.Class64K, time.Time{}, 1)
	_, last, _ := e.s.ByRecipient(c.rks[2])
	for i, rk := range c.rks {
		if err := e.s.Ack(rk); err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
		if err := e.s.Ack(rk); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("ack %d again: %v", i, err)
		}
		if _, _, err := e.s.ByRecipient(rk); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("acknowledged recipient %d: %v", i, err)
		}
		if i == len(c.rks)-1 {
			break
		}
		if ch := e.bySender(c.k); ch.Remaining != len(c.rks)-1-i {
			t.Fatalf("after ack %d: %d left", i, ch.Remaining)
		}
		_, rc, err := e.s.ByRecipient(c.rks[i+1])
		if err != nil {
			t.Fatal(err)
		}
		if got, err := e.s.Read(&rc); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read after ack %d: %v", i, err)
		}
		e.usage(cost(3, wire.Class1M, true)+cost(1, wire.Class64K, true), 2)
	}
	e.gone(c.k)
	if n := e.copies(data); n != 0 {
		t.Fatalf("%d files left", n)
	}
	if _, err := e.s.Read(&last); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("read after the last ack: %v", err)
	}
	e.usage(cost(1, wire.Class64K, true), 1)
	if e.copies(otherData) != 1 || e.bySender(other.k).Remaining != 1 {
		t.Fatal("the other chunk changed")
	}
}

// testDelete: Delete removes an uploaded or an unfilled chunk with its
// recipients and file, once.
func testDelete(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	up, data := e.upload(wire.Class256K, time.Time{}, 2)
	unfilled := e.create(wire.Class64K, time.Time{}, 2)
	ch := e.bySender(up.k)
	for _, c := range []chunk{up, unfilled} {
		if err := e.s.Delete(c.k); err != nil {
			t.Fatal(err)
		}
		e.gone(c.k)
		for _, rk := range c.rks {
			if _, _, err := e.s.ByRecipient(rk); !errors.Is(err, files.ErrNotFound) {
				t.Fatalf("recipient of a deleted chunk: %v", err)
			}
			if err := e.s.Ack(rk); !errors.Is(err, files.ErrNotFound) {
				t.Fatalf("ack of a deleted chunk: %v", err)
			}
		}
		if err := e.s.Delete(c.k); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("delete again: %v", err)
		}
		if err := e.s.Put(c.k, randData(c.class)); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("put after delete: %v", err)
		}
	}
	if e.copies(data) != 0 {
		t.Fatal("file left")
	}
	if _, err := e.s.Read(&ch); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("read after delete: %v", err)
	}
	e.usage(0, 0)
}

// testQuotaAtCreate: records fill the quota exactly; one more is
// ErrQuota, and fits again once one is deleted.
func testQuotaAtCreate(t *testing.T, open Open) {
	quota := files.MetadataCost(2) + files.MetadataCost(3)
	e := newEnv(t, open, quota)
	a := e.create(wire.Class64K, time.Time{}, 2)
	e.create(wire.Class64K, time.Time{}, 3)
	e.usage(quota, 2)
	k := files.SenderKey(randKey())
	rcpt := map[files.RecipientKey]files.Recipient{files.RecipientKey(randKey()): {}}
	if err := e.s.Create(k, files.Chunk{Class: wire.Class64K}, rcpt); !errors.Is(err, files.ErrQuota) {
		t.Fatalf("create over quota: %v", err)
	}
	e.gone(k)
	e.usage(quota, 2)
	if err := e.s.Delete(a.k); err != nil {
		t.Fatal(err)
	}
	// MetadataCost(1) fits under the MetadataCost(2) given back.
	if err := e.s.Create(k, files.Chunk{Class: wire.Class64K}, rcpt); err != nil {
		t.Fatal(err)
	}
	e.usage(files.MetadataCost(1)+files.MetadataCost(3), 2)
}

// testQuotaAtPut: an upload that fills the quota exactly succeeds; one
// that would pass it by a byte is ErrQuota and leaves neither a record
// nor a file.
func testQuotaAtPut(t *testing.T, open Open) {
	size := int64(wire.Class64K.Size())
	quota := 2*files.MetadataCost(1) + 2*size - 1
	e := newEnv(t, open, quota)
	a := e.create(wire.Class64K, time.Time{}, 1)
	b := e.create(wire.Class64K, time.Time{}, 1)
	dataA, dataB := randData(wire.Class64K), randData(wire.Class64K)
	if err := e.s.Put(a.k, dataA); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Put(b.k, dataB); !errors.Is(err, files.ErrQuota) {
		t.Fatalf("put one byte over quota: %v", err)
	}
	if e.bySender(b.k).Uploaded || e.copies(dataB) != 0 {
		t.Fatal("a refused put left a record or a file")
	}
	e.usage(2*files.MetadataCost(1)+size, 2)
	// Without the byte missing, the same upload fits exactly.
	e2 := newEnv(t, open, quota+1)
	a2 := e2.create(wire.Class64K, time.Time{}, 1)
	b2 := e2.create(wire.Class64K, time.Time{}, 1)
	for _, c := range []chunk{a2, b2} {
		if err := e2.s.Put(c.k, randData(wire.Class64K)); err != nil {
			t.Fatal(err)
		}
	}
	e2.usage(quota+1, 2)
	// Repeating an upload at the quota charges nothing, so it succeeds.
	if err := e.s.Put(a.k, dataA); err != nil {
		t.Fatalf("repeated put at the quota: %v", err)
	}
	if err := e.s.Delete(a.k); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Put(b.k, dataB); err != nil {
		t.Fatalf("put after delete: %v", err)
	}
	e.usage(files.MetadataCost(1)+size, 1)
}

// testExpireOrder: Expire deletes chunks created before the cutoff (not
// at it), oldest first, ties in key order, at most limit per call, with
// their files.
func testExpireOrder(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	base := time.Unix(1_800_000_000, 0)
	var cs []chunk
	var data [][]byte
	for i := range 5 {
		c, d := e.upload(wire.Class64K, base.Add(time.Duration(i)*time.Hour), 1)
		cs, data = append(cs, c), append(data, d)
	}
	if n, err := e.s.Expire(base.Add(3*time.Hour), 0); err != nil || n != 0 {
		t.Fatalf("limit 0: %d %v", n, err)
	}
	if n, err := e.s.Expire(base.Add(3*time.Hour), 2); err != nil || n != 2 {
		t.Fatalf("first pass: %d %v", n, err)
	}
	for i, c := range cs {
		_, err := e.s.BySender(c.k)
		if gone := errors.Is(err, files.ErrNotFound); gone != (i < 2) {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if n := e.copies(data[i]); n != map[bool]int{true: 0, false: 1}[i < 2] {
			t.Fatalf("chunk %d: %d files", i, n)
		}
	}
	if n, err := e.s.Expire(base.Add(3*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("second pass: %d %v", n, err)
	}
	if n, err := e.s.Expire(base.Add(3*time.Hour), 10); err != nil || n != 0 {
		t.Fatalf("third pass: %d %v", n, err)
	}
	e.usage(2*cost(1, wire.Class64K, true), 2)

	// Ties: the same second, in key order, whatever the creation order.
	tie := base.Add(-time.Hour)
	var keys []files.SenderKey
	for _, first := range []byte{3, 1, 2} {
		k := files.SenderKey(randKey())
		k[0] = first
		if err := e.s.Create(k, files.Chunk{Class: wire.Class64K, Created: tie}, map[files.RecipientKey]files.Recipient{files.RecipientKey(randKey()): {}}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	for _, want := range []int{1, 2, 0} {
		if n, err := e.s.Expire(tie.Add(time.Second), 1); err != nil || n != 1 {
			t.Fatalf("tie: %d %v", n, err)
		}
		e.gone(keys[want])
	}
}

// testExpireUnfilled: only chunks not uploaded, oldest first, at most
// limit per call; an uploaded chunk stays whatever its age.
func testExpireUnfilled(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	base := time.Unix(1_800_000_000, 0)
	var cs []chunk
	for i := range 5 {
		cs = append(cs, e.create(wire.Class64K, base.Add(time.Duration(i)*time.Minute), 1))
	}
	data := randData(wire.Class64K)
	if err := e.s.Put(cs[0].k, data); err != nil {
		t.Fatal(err)
	}
	if n, err := e.s.ExpireUnfilled(base.Add(3*time.Minute), 0); err != nil || n != 0 {
		t.Fatalf("limit 0: %d %v", n, err)
	}
	if n, err := e.s.ExpireUnfilled(base.Add(3*time.Minute), 1); err != nil || n != 1 {
		t.Fatalf("first pass: %d %v", n, err)
	}
	for i, c := range cs {
		_, err := e.s.BySender(c.k)
		if gone := errors.Is(err, files.ErrNotFound); gone != (i == 1) {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	if n, err := e.s.ExpireUnfilled(base.Add(3*time.Minute), 10); err != nil || n != 1 {
		t.Fatalf("second pass: %d %v", n, err)
	}
	e.gone(cs[2].k)
	if n, err := e.s.ExpireUnfilled(base.Add(time.Hour), 10); err != nil || n != 2 {
		t.Fatalf("third pass: %d %v", n, err)
	}
	if !e.bySender(cs[0].k).Uploaded || e.copies(data) != 1 {
		t.Fatal("the uploaded chunk expired")
	}
	e.usage(cost(1, wire.Class64K, true), 1)
	if n, err := e.s.Expire(base.Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	if e.copies(data) != 0 {
		t.Fatal("file left")
	}
	e.usage(0, 0)
}

// testUsageBackToZero: whatever way chunks go (ack, delete, expiry),
// the usage returns to zero and no file is left.
func testUsageBackToZero(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	old := time.Unix(1_800_000_000, 0)
	var all [][]byte
	acked, d := e.upload(wire.Class256K, time.Time{}, 3)
	all = append(all, d)
	deleted, d := e.upload(wire.Class64K, time.Time{}, 1)
	all = append(all, d)
	expired, d := e.upload(wire.Class1M, old, 2)
	all = append(all, d)
	e.create(wire.Class64K, old, 4) // expires unfilled
	e.create(wire.Class4M, old, 1)  // expires with the rest
	refused := e.create(wire.Class64K, time.Time{}, 2)
	if err := e.s.Put(refused.k, make([]byte, 5)); !errors.Is(err, files.ErrSize) {
		t.Fatal(err)
	}
	want := cost(3, wire.Class256K, true) + cost(1, wire.Class64K, true) + cost(2, wire.Class1M, true) +
		cost(4, wire.Class64K, false) + cost(1, wire.Class4M, false) + cost(2, wire.Class64K, false)
	e.usage(want, 6)
	for _, rk := range acked.rks {
		if err := e.s.Ack(rk); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.s.Ack(expired.rks[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Delete(deleted.k); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Delete(refused.k); err != nil {
		t.Fatal(err)
	}
	if n, err := e.s.ExpireUnfilled(old.Add(time.Second), 1); err != nil || n != 1 {
		t.Fatalf("expire unfilled: %d %v", n, err)
	}
	if n, err := e.s.Expire(old.Add(time.Second), 10); err != nil || n != 2 {
		t.Fatalf("expire: %d %v", n, err)
	}
	e.usage(0, 0)
	for i, d := range all {
		if e.copies(d) != 0 {
			t.Fatalf("file %d left", i)
		}
	}
}

// testConcurrent: of concurrent Puts of one chunk exactly one stores
// (the same bytes all succeed, other bytes lose with ErrUploaded) and
// one file is left; of concurrent Acks of one recipient exactly one
// counts.
func testConcurrent(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	const n = 8
	run := func(fn func(i int) error) []error {
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = fn(i)
			})
		}
		close(start)
		wg.Wait()
		return errs
	}
	same, data := e.create(wire.Class256K, time.Time{}, 2), randData(wire.Class256K)
	for i, err := range run(func(int) error { return e.s.Put(same.k, bytes.Clone(data)) }) {
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if n := e.copies(data); n != 1 {
		t.Fatalf("%d files after concurrent puts of the same bytes", n)
	}
	other := e.create(wire.Class64K, time.Time{}, 1)
	versions := make([][]byte, n)
	for i := range versions {
		versions[i] = randData(wire.Class64K)
	}
	won := -1
	for i, err := range run(func(i int) error { return e.s.Put(other.k, versions[i]) }) {
		switch {
		case err == nil && won < 0:
			won = i
		case err == nil:
			t.Fatalf("puts %d and %d of other bytes both stored", won, i)
		case !errors.Is(err, files.ErrUploaded):
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no put stored")
	}
	ch := e.bySender(other.k)
	if got, err := e.s.Read(&ch); err != nil || !bytes.Equal(got, versions[won]) {
		t.Fatalf("read after the race: %v", err)
	}
	for i, v := range versions {
		if c := e.copies(v); c != map[bool]int{true: 1, false: 0}[i == won] {
			t.Fatalf("version %d: %d files", i, c)
		}
	}
	e.usage(cost(2, wire.Class256K, true)+cost(1, wire.Class64K, true), 2)
	acks := 0
	for i, err := range run(func(int) error { return e.s.Ack(same.rks[0]) }) {
		switch {
		case err == nil:
			acks++
		case !errors.Is(err, files.ErrNotFound):
			t.Fatalf("ack %d: %v", i, err)
		}
	}
	if acks != 1 || e.bySender(same.k).Remaining != 1 {
		t.Fatalf("%d acks of one recipient counted", acks)
	}
	// Every recipient acknowledges at once: each Ack counts, and the
	// chunk goes with the last, whichever it is.
	all, allData := e.upload(wire.Class64K, time.Time{}, n)
	for i, err := range run(func(i int) error { return e.s.Ack(all.rks[i]) }) {
		if err != nil {
			t.Fatalf("ack of recipient %d: %v", i, err)
		}
	}
	e.gone(all.k)
	if e.copies(allData) != 0 {
		t.Fatal("file left after every recipient acknowledged")
	}
	e.usage(cost(2, wire.Class256K, true)+cost(1, wire.Class64K, true), 2)
	// Deletes race the last recipient's Acks: one of each kind at most
	// succeeds, and the chunk goes once.
	var deletes, lastAcks int
	for i, err := range run(func(i int) error {
		if i%2 == 0 {
			return e.s.Delete(same.k)
		}
		return e.s.Ack(same.rks[1])
	}) {
		switch {
		case err == nil && i%2 == 0:
			deletes++
		case err == nil:
			lastAcks++
		case !errors.Is(err, files.ErrNotFound):
			t.Fatalf("delete or last ack %d: %v", i, err)
		}
	}
	if deletes > 1 || lastAcks > 1 || deletes+lastAcks == 0 {
		t.Fatalf("%d deletes and %d last acks succeeded", deletes, lastAcks)
	}
	e.gone(same.k)
	if e.copies(data) != 0 {
		t.Fatal("file left")
	}
	e.usage(cost(1, wire.Class64K, true), 1)
}

// testClosed: every method of a closed store is ErrClosed.
func testClosed(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	c, data := e.upload(wire.Class64K, time.Time{}, 2)
	unfilled := e.create(wire.Class64K, time.Time{}, 1)
	ch := e.bySender(c.k)
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	_, _, rerr := e.s.ByRecipient(c.rks[0])
	_, serr := e.s.BySender(c.k)
	_, readErr := e.s.Read(&ch)
	_, xerr := e.s.Expire(time.Now().Add(time.Hour), 10)
	_, uerr := e.s.ExpireUnfilled(time.Now().Add(time.Hour), 10)
	for name, err := range map[string]error{
		"create":          e.s.Create(randKey(), files.Chunk{Class: wire.Class64K}, map[files.RecipientKey]files.Recipient{files.RecipientKey(randKey()): {}}),
		"by sender":       serr,
		"by recipient":    rerr,
		"put":             e.s.Put(unfilled.k, randData(wire.Class64K)),
		"repeated put":    e.s.Put(c.k, data),
		"read":            readErr,
		"ack":             e.s.Ack(c.rks[0]),
		"delete":          e.s.Delete(c.k),
		"expire":          xerr,
		"expire unfilled": uerr,
	} {
		if !errors.Is(err, files.ErrClosed) {
			t.Errorf("%s after close: %v", name, err)
		}
	}
	if e.copies(data) != 1 {
		t.Fatal("the closed store removed the file")
	}
}

// testReopen: a store opened again on the same directory has the same
// records, bytes and usage.
func testReopen(t *testing.T, open Open) {
	e := newEnv(t, open, bigQuota)
	old := time.Unix(1_800_000_000, 0)
	up, data := e.upload(wire.Class256K, time.Time{}, 3)
	if err := e.s.Ack(up.rks[0]); err != nil {
		t.Fatal(err)
	}
	unfilled := e.create(wire.Class64K, old, 2)
	before := map[files.SenderKey]files.Chunk{up.k: e.bySender(up.k), unfilled.k: e.bySender(unfilled.k)}
	want := cost(3, wire.Class256K, true) + cost(2, wire.Class64K, false)
	e.reopen()
	for k, c := range before {
		if got := e.bySender(k); !sameChunk(got, c) {
			t.Fatalf("record after reopen %+v, before %+v", got, c)
		}
	}
	e.usage(want, 2)
	r, ch, err := e.s.ByRecipient(up.rks[1])
	if err != nil || r.Auth != up.rcpts[up.rks[1]].Auth || r.BoxKey != up.rcpts[up.rks[1]].BoxKey {
		t.Fatalf("recipient after reopen: %v", err)
	}
	if got, err := e.s.Read(&ch); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after reopen: %v", err)
	}
	if _, _, err := e.s.ByRecipient(up.rks[0]); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("acknowledged recipient after reopen: %v", err)
	}
	if n, err := e.s.ExpireUnfilled(old.Add(time.Second), 10); err != nil || n != 1 {
		t.Fatalf("expire unfilled after reopen: %d %v", n, err)
	}
	if err := e.s.Put(unfilled.k, randData(wire.Class64K)); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("put of the expired chunk: %v", err)
	}
	for _, rk := range up.rks[1:] {
		if err := e.s.Ack(rk); err != nil {
			t.Fatal(err)
		}
	}
	e.usage(0, 0)
	if e.copies(data) != 0 {
		t.Fatal("file left")
	}
}
