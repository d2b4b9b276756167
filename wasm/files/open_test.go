package files

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/crypto/vault"
	"github.com/wisp-chat/wisp/wasm/store"
)

// newMemStore is an encrypted store over an in-memory file system, which
// it also returns for tampering.
func newMemStore(t testing.TB) (*store.Store, hackpadfs.FS) {
	t.Helper()
	fsys, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	k, err := vault.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(fsys, "profile", store.VaultSealer(k))
	if err != nil {
		t.Fatal(err)
	}
	return st, fsys
}

// storeLocally encrypts plain exactly as Send does and stores its relay
// chunks under dir as Receive would, without a relay: the description's
// chunk records are random and never used.
func storeLocally(t *testing.T, st *store.Store, dir store.Key, plain []byte) *Description {
	t.Helper()
	d := fakeDescription(t, int64(len(plain)), "relay.example")
	n := len(d.Chunks)
	jobs := make(chan job, n)
	free := make(chan []byte, n)
	for range n {
		free <- make([]byte, d.Class.Size())
	}
	h := newDigester()
	c := &chunker{ctx: context.Background(), size: d.Class.Size(), free: free, out: jobs}
	if err := encrypt(bytes.NewReader(plain), int64(len(plain)), d.Key, h, c); err != nil {
		t.Fatal(err)
	}
	close(jobs)
	for j := range jobs {
		if err := st.Put(chunkKey(dir, j.index), j.data); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := h.Sum()
	if err != nil {
		t.Fatal(err)
	}
	d.Digest = sum
	return d
}

func openAll(st *store.Store, dir store.Key, d *Description) ([]byte, error) {
	r, err := Open(st, dir, d)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestOpenLocal(t *testing.T) {
	for _, size := range []int{0, 1, 64*kib - 1, 64*kib + 1, 5 * mib} {
		st, _ := newMemStore(t)
		plain := randBytes(t, size)
		d := storeLocally(t, st, "f", plain)
		got, err := openAll(st, "f", d)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: %v", size, err)
		}
	}
}

func TestOpenDetects(t *testing.T) {
	plain := randBytes(t, 9*mib) // three chunks
	setup := func() (*store.Store, *Description) {
		st, _ := newMemStore(t)
		return st, storeLocally(t, st, "f", plain)
	}
	expect := func(name string, st *store.Store, d *Description, want error) {
		t.Helper()
		if _, err := openAll(st, "f", d); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}

	st, d := setup()
	if err := st.Delete(chunkKey("f", 2)); err != nil {
		t.Fatal(err)
	}
	expect("missing last chunk", st, d, ErrIncomplete)

	st, d = setup()
	a, _ := st.Get(chunkKey("f", 0))
	b, _ := st.Get(chunkKey("f", 1))
	if st.Put(chunkKey("f", 0), b) != nil || st.Put(chunkKey("f", 1), a) != nil {
		t.Fatal("swap failed")
	}
	expect("swapped chunks", st, d, ErrCorrupted)

	st, d = setup()
	if err := st.Put(chunkKey("f", 2), a); err != nil {
		t.Fatal(err)
	}
	expect("chunk replaced by another", st, d, ErrCorrupted)

	st, d = setup()
	other := fakeDescription(t, d.Size, "relay.example")
	d.Key = other.Key
	expect("wrong key", st, d, ErrCorrupted)

	st, d = setup()
	d.Digest[31] ^= 1
	expect("wrong digest", st, d, ErrCorrupted)

	st, d = setup()
	d.Size-- // same chunk count, one byte shorter
	expect("shorter size", st, d, ErrCorrupted)
	d.Size += 2
	expect("longer size", st, d, ErrCorrupted)

	// A record changed after Open's check fails the reader, not silently.
	st, d = setup()
	r, err := Open(st, "f", d)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := st.Get(chunkKey("f", 1))
	c[5] ^= 1
	if err := st.Put(chunkKey("f", 1), c); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, ErrCorrupted) {
		t.Errorf("record changed after Open: %v, want ErrCorrupted", err)
	}
}

func TestBadArguments(t *testing.T) {
	st, _ := newMemStore(t)
	d := fakeDescription(t, 10, "relay.example")
	bad := *d
	bad.Size = -5
	ctx := context.Background()
	// Validation comes before any use of the relay, so none is given.
	if err := Receive(ctx, nil, &bad, st, "f", ReceiveOptions{}); !errors.Is(err, ErrInvalidDescription) {
		t.Errorf("Receive of an invalid description: %v", err)
	}
	if _, err := Open(st, "f", &bad); !errors.Is(err, ErrInvalidDescription) {
		t.Errorf("Open of an invalid description: %v", err)
	}
	for _, dir := range []store.Key{"", "a//b", "a/b/c/d/e/f/g/h", "x y"} {
		if err := Receive(ctx, nil, d, st, dir, ReceiveOptions{}); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Receive into %q: %v", dir, err)
		}
		if _, err := Open(st, dir, d); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Open of %q: %v", dir, err)
		}
	}
	if _, err := DescriptionSize(MaxFileSize+1, d.Relay); !errors.Is(err, ErrTooLarge) {
		t.Errorf("DescriptionSize over the limit: %v", err)
	}
}
