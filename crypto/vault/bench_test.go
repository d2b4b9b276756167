package vault

import (
	"crypto/rand"
	"testing"
)

// BenchmarkUnlock is the passphrase unlock time with DefaultParams
// (Argon2id, 64 MiB, t=3, p=1).
func BenchmarkUnlock(b *testing.B) {
	k := testKey(b, "bench")
	w, err := Wrap(rand.Reader, k, []byte("passphrase"), DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Unwrap([]byte("passphrase"), w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecordSeal(b *testing.B) {
	k := testKey(b, "bench")
	pt := make([]byte, 4096)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := Seal(rand.Reader, k, "msg/000001", pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecordOpen(b *testing.B) {
	k := testKey(b, "bench")
	rec, _ := Seal(rand.Reader, k, "msg/000001", make([]byte, 4096))
	b.SetBytes(4096)
	for b.Loop() {
		if _, err := Open(k, "msg/000001", rec); err != nil {
			b.Fatal(err)
		}
	}
}
