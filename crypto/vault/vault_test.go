package vault

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

// fast parameters for tests; DefaultParams is exercised by the vectors.
var fast = Params{MemoryKiB: 256, Time: 1, Threads: 1}

func testKey(t testing.TB, label string) Key {
	k, err := NewKey(testkit.Rand(label))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWrapUnwrap(t *testing.T) {
	r := testkit.Rand("vault/wrap")
	k := testKey(t, "vault/key")
	w, err := Wrap(r, k, []byte("correct horse"), fast)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != WrappedSize {
		t.Fatalf("wrapped key of %d bytes", len(w))
	}
	got, err := Unwrap([]byte("correct horse"), w)
	if err != nil || !got.Equal(k) {
		t.Fatalf("Unwrap: %v", err)
	}
	if p, err := WrappedParams(w); err != nil || p != fast {
		t.Fatalf("WrappedParams: %+v, %v", p, err)
	}
	for _, wrong := range []string{"", "correct hors", "correct horse ", "Correct horse"} {
		if _, err := Unwrap([]byte(wrong), w); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("passphrase %q: %v", wrong, err)
		}
	}
	// Rewrapping with stronger parameters keeps the data key.
	stronger := Params{MemoryKiB: 512, Time: 2, Threads: 2}
	w2, err := Wrap(r, got, []byte("new passphrase"), stronger)
	if err != nil {
		t.Fatal(err)
	}
	if got2, err := Unwrap([]byte("new passphrase"), w2); err != nil || !got2.Equal(k) {
		t.Fatalf("rewrapped: %v", err)
	}
	if _, err := Wrap(iotest.ErrReader(io.ErrUnexpectedEOF), k, nil, fast); err == nil {
		t.Fatal("Wrap with a failing reader")
	}
}

func TestParamsBounds(t *testing.T) {
	ok := []Params{
		{MemoryKiB: 8, Time: 1, Threads: 1},
		{MemoryKiB: MaxMemoryKiB, Time: MaxTime, Threads: MaxThreads},
		{MemoryKiB: 8 * MaxThreads, Time: 1, Threads: MaxThreads},
		DefaultParams(),
	}
	bad := []Params{
		{MemoryKiB: 7, Time: 1, Threads: 1},
		{MemoryKiB: MaxMemoryKiB + 1, Time: 1, Threads: 1},
		{MemoryKiB: 64, Time: 0, Threads: 1},
		{MemoryKiB: 64, Time: MaxTime + 1, Threads: 1},
		{MemoryKiB: 64, Time: 1, Threads: 0},
		{MemoryKiB: 1024, Time: 1, Threads: MaxThreads + 1},
		{MemoryKiB: 8*MaxThreads - 1, Time: 1, Threads: MaxThreads},
	}
	for _, p := range ok {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	k := testKey(t, "vault/key")
	r := testkit.Rand("vault/bounds")
	w, _ := Wrap(r, k, nil, fast)
	for _, p := range bad {
		if err := p.Validate(); !errors.Is(err, ErrParams) {
			t.Errorf("%+v: %v", p, err)
		}
		if _, err := Wrap(r, k, nil, p); !errors.Is(err, ErrParams) {
			t.Errorf("Wrap %+v: %v", p, err)
		}
		// A forged header with these parameters is refused before Argon2 runs.
		forged := bytes.Clone(w)
		forged[2], forged[3], forged[4], forged[5] = byte(p.MemoryKiB>>24), byte(p.MemoryKiB>>16), byte(p.MemoryKiB>>8), byte(p.MemoryKiB)
		forged[6], forged[7], forged[8], forged[9] = byte(p.Time>>24), byte(p.Time>>16), byte(p.Time>>8), byte(p.Time)
		forged[10] = p.Threads
		if _, err := Unwrap(nil, forged); !errors.Is(err, ErrParams) {
			t.Errorf("Unwrap with %+v: %v", p, err)
		}
	}
}

// TestWrappedTamper: every bit flip, truncation and extension of a wrapped
// key fails. Flips are checked against the AEAD with the original KEK (the
// header is associated data), plus a real Unwrap for the salt and the
// ciphertext, whose Argon2 cost is known.
func TestWrappedTamper(t *testing.T) {
	k := testKey(t, "vault/key")
	w, _ := Wrap(testkit.Rand("vault/tamper"), k, []byte("pw"), fast)
	kek := deriveKEK([]byte("pw"), w[11:11+SaltSize], fast)
	if _, err := openWrapped(kek, w); err != nil {
		t.Fatal(err)
	}
	for bit := range len(w) * 8 {
		w[bit/8] ^= 1 << (bit % 8)
		if _, err := openWrapped(kek, w); err == nil {
			t.Fatalf("bit %d flip accepted", bit)
		}
		if i := bit / 8; i >= 11 && bit%8 == 0 {
			if _, err := Unwrap([]byte("pw"), w); err == nil {
				t.Fatalf("byte %d flip accepted by Unwrap", i)
			}
		}
		w[bit/8] ^= 1 << (bit % 8)
	}
	for n := range len(w) {
		if _, err := Unwrap([]byte("pw"), w[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, err := Unwrap([]byte("pw"), append(bytes.Clone(w), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatal("extension accepted")
	}
	bad := bytes.Clone(w)
	bad[0] = 2
	if _, err := Unwrap([]byte("pw"), bad); !errors.Is(err, ErrVersion) {
		t.Fatalf("version: %v", err)
	}
	bad = bytes.Clone(w)
	bad[1] = 7
	if _, err := Unwrap([]byte("pw"), bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("kdf: %v", err)
	}
}

func TestRecords(t *testing.T) {
	r := testkit.Rand("vault/records")
	k := testKey(t, "vault/key")
	for _, pt := range [][]byte{nil, {}, []byte("x"), testkit.Bytes(r, 10_000)} {
		rec, err := Seal(r, k, "msg/1", pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec) != len(pt)+RecordOverhead {
			t.Fatalf("record of %d bytes for %d", len(rec), len(pt))
		}
		got, err := Open(k, "msg/1", rec)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open: %v", err)
		}
	}
	a, _ := Seal(r, k, "contact/a", []byte("alice"))
	b, _ := Seal(r, k, "contact/b", []byte("bob"))
	for _, tc := range []struct {
		name string
		rec  []byte
	}{{"contact/b", a}, {"contact/a", b}, {"", a}, {"contact/a\x00", a}, {"contact/", a}} {
		if _, err := Open(k, tc.name, tc.rec); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("record opened under name %q: %v", tc.name, err)
		}
	}
	if _, err := Open(testKey(t, "other"), "contact/a", a); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong key: %v", err)
	}
	// Empty name is a name like any other.
	e, _ := Seal(r, k, "", []byte("e"))
	if got, err := Open(k, "", e); err != nil || string(got) != "e" {
		t.Fatalf("empty name: %v", err)
	}
	if _, err := Seal(iotest.ErrReader(io.ErrUnexpectedEOF), k, "n", nil); err == nil {
		t.Fatal("Seal with a failing reader")
	}
}

// TestRecordTamper: every bit flip, truncation and extension of a record
// fails.
func TestRecordTamper(t *testing.T) {
	k := testKey(t, "vault/key")
	rec, _ := Seal(testkit.Rand("vault/rt"), k, "chunk/7", []byte("a small record"))
	for bit := range len(rec) * 8 {
		rec[bit/8] ^= 1 << (bit % 8)
		if _, err := Open(k, "chunk/7", rec); err == nil {
			t.Fatalf("bit %d flip accepted", bit)
		}
		rec[bit/8] ^= 1 << (bit % 8)
	}
	for n := range len(rec) {
		if _, err := Open(k, "chunk/7", rec[:n]); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
	}
	for _, extra := range [][]byte{{0}, make([]byte, 16)} {
		if _, err := Open(k, "chunk/7", append(bytes.Clone(rec), extra...)); err == nil {
			t.Fatal("extension accepted")
		}
	}
	bad := bytes.Clone(rec)
	bad[0] = 0
	if _, err := Open(k, "chunk/7", bad); !errors.Is(err, ErrVersion) {
		t.Fatalf("version: %v", err)
	}
}

func TestKey(t *testing.T) {
	k := testKey(t, "vault/key")
	k2, err := KeyFromBytes(k.Bytes())
	if err != nil || !k2.Equal(k) {
		t.Fatal("KeyFromBytes does not restore the key")
	}
	if testKey(t, "other").Equal(k) {
		t.Fatal("different keys are Equal")
	}
	for _, n := range []int{0, 31, 33} {
		if _, err := KeyFromBytes(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Fatalf("KeyFromBytes(%d): %v", n, err)
		}
	}
	testkit.CheckRedacted(t, k.Bytes(), k, &k, struct{ K Key }{k})
}
