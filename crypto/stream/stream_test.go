package stream

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

func heavy() bool { return testing.Short() || runtime.GOOS == "js" }

func testKey(t testing.TB) Key {
	k, err := NewKey(testkit.Rand("stream/key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func encrypt(t testing.TB, k Key, pt []byte, chunk, writeSize int) []byte {
	t.Helper()
	var out bytes.Buffer
	w := newWriter(&out, k, chunk)
	for p := pt; len(p) > 0; {
		n := min(writeSize, len(p))
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func decrypt(k Key, ct []byte, chunk int) ([]byte, error) {
	return io.ReadAll(newReader(bytes.NewReader(ct), k, chunk))
}

func TestRoundTrip(t *testing.T) {
	k := testKey(t)
	r := testkit.Rand("stream/roundtrip")
	for _, n := range []int{0, 1, 100, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 5} {
		pt := testkit.Bytes(r, n)
		for _, ws := range []int{1 << 20, 1000, ChunkSize} {
			if ws == 1000 && n > 2*ChunkSize && heavy() {
				continue
			}
			ct := encrypt(t, k, pt, ChunkSize, ws)
			if int64(len(ct)) != CiphertextSize(int64(n)) {
				t.Fatalf("n=%d: %d ciphertext bytes, CiphertextSize says %d", n, len(ct), CiphertextSize(int64(n)))
			}
			if got, err := PlaintextSize(int64(len(ct))); err != nil || got != int64(n) {
				t.Fatalf("PlaintextSize(%d) = %d, %v", len(ct), got, err)
			}
			got, err := io.ReadAll(iotest.OneByteReader(NewReader(iotest.HalfReader(bytes.NewReader(ct)), k)))
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("n=%d write=%d: %v", n, ws, err)
			}
		}
	}
}

func TestSizes(t *testing.T) {
	for n, want := range map[int64]int64{
		0: TagSize, 1: 1 + TagSize, ChunkSize: ChunkSize + TagSize,
		ChunkSize + 1: ChunkSize + 1 + 2*TagSize, 10 * ChunkSize: 10 * EncryptedChunkSize,
	} {
		if got := CiphertextSize(n); got != want {
			t.Errorf("CiphertextSize(%d) = %d, want %d", n, got, want)
		}
	}
	for _, c := range []int64{-1, 0, TagSize - 1, EncryptedChunkSize + TagSize, 5*EncryptedChunkSize + TagSize} {
		if _, err := PlaintextSize(c); !errors.Is(err, ErrSize) {
			t.Errorf("PlaintextSize(%d): %v, want ErrSize", c, err)
		}
	}
	for n := int64(0); n < 3*ChunkSize+3; n += 997 {
		if got, err := PlaintextSize(CiphertextSize(n)); err != nil || got != n {
			t.Fatalf("PlaintextSize(CiphertextSize(%d)) = %d, %v", n, got, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("CiphertextSize(-1) did not panic")
		}
	}()
	CiphertextSize(-1)
}

// TestTamper uses 64-byte chunks (same construction, smaller numbers) so
// that every bit of a multi-chunk stream can be flipped, then checks
// truncation, reordering, duplication and extension on both sizes.
func TestTamper(t *testing.T) {
	k := testKey(t)
	const chunk = 64
	pt := testkit.Bytes(testkit.Rand("stream/tamper"), 3*chunk+10)
	ct := encrypt(t, k, pt, chunk, 7)
	enc := chunk + TagSize
	if got, err := decrypt(k, ct, chunk); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("untouched: %v", err)
	}
	for bit := range len(ct) * 8 {
		ct[bit/8] ^= 1 << (bit % 8)
		if _, err := decrypt(k, ct, chunk); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("bit %d: %v", bit, err)
		}
		ct[bit/8] ^= 1 << (bit % 8)
	}
	for n := range len(ct) {
		if _, err := decrypt(k, ct[:n], chunk); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	chunks := [][]byte{ct[:enc], ct[enc : 2*enc], ct[2*enc : 3*enc], ct[3*enc:]}
	join := func(idx ...int) []byte {
		var b []byte
		for _, i := range idx {
			b = append(b, chunks[i]...)
		}
		return b
	}
	for name, bad := range map[string][]byte{
		"swap":             join(1, 0, 2, 3),
		"duplicate":        join(0, 0, 1, 2, 3),
		"drop middle":      join(0, 2, 3),
		"drop last":        join(0, 1, 2),
		"last twice":       join(0, 1, 2, 3, 3),
		"extend by byte":   append(join(0, 1, 2, 3), 0),
		"extend by chunk":  join(0, 1, 2, 3, 1),
		"last moved first": join(3, 0, 1, 2),
	} {
		if _, err := decrypt(k, bad, chunk); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Real chunk size: one flip per chunk region, boundaries, reorder.
	big := encrypt(t, k, testkit.Bytes(testkit.Rand("stream/big"), 2*ChunkSize+100), ChunkSize, 1<<20)
	for _, i := range []int{0, 11, ChunkSize, EncryptedChunkSize - 1, EncryptedChunkSize, 2*EncryptedChunkSize + 3, len(big) - 1} {
		big[i] ^= 0x10
		if _, err := decrypt(k, big, ChunkSize); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flip at %d: %v", i, err)
		}
		big[i] ^= 0x10
	}
	e := EncryptedChunkSize
	for name, bad := range map[string][]byte{
		"truncate at boundary": big[:2*e],
		"truncate by one":      big[:len(big)-1],
		"swap":                 append(append(bytes.Clone(big[e:2*e]), big[:e]...), big[2*e:]...),
		"extend":               append(bytes.Clone(big), big[:e]...),
	} {
		if _, err := decrypt(k, bad, ChunkSize); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	other, _ := NewKey(testkit.Rand("stream/other"))
	if _, err := decrypt(other, big, ChunkSize); !errors.Is(err, ErrDecrypt) {
		t.Errorf("wrong key: %v", err)
	}
}

// TestReaderReleasesOnlyAuthenticated: a tampered second chunk yields the
// first chunk's plaintext, then the error, never the tampered bytes.
func TestReaderReleasesOnlyAuthenticated(t *testing.T) {
	k := testKey(t)
	pt := bytes.Repeat([]byte("a"), ChunkSize+50)
	ct := encrypt(t, k, pt, ChunkSize, 1<<20)
	ct[EncryptedChunkSize+5] ^= 1
	got, err := io.ReadAll(NewReader(bytes.NewReader(ct), k))
	if !errors.Is(err, ErrDecrypt) || !bytes.Equal(got, pt[:ChunkSize]) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	r := NewReader(bytes.NewReader(ct[:3]), k)
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("short stream: %v", err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("error is not sticky: %v", err)
	}
}

func TestErrorsPropagate(t *testing.T) {
	k := testKey(t)
	boom := errors.New("boom")
	if _, err := io.ReadAll(NewReader(iotest.ErrReader(boom), k)); !errors.Is(err, boom) {
		t.Fatalf("reader: %v", err)
	}
	w := NewWriter(errWriter{boom}, k)
	if _, err := w.Write(make([]byte, ChunkSize+1)); !errors.Is(err, boom) {
		t.Fatalf("write: %v", err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Fatalf("close: %v", err)
	}
	w = NewWriter(io.Discard, k)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestKey(t *testing.T) {
	k := testKey(t)
	k2, err := KeyFromBytes(k.Bytes())
	if err != nil || !k2.Equal(k) {
		t.Fatal("KeyFromBytes does not restore the key")
	}
	other, _ := NewKey(testkit.Rand("other"))
	if other.Equal(k) {
		t.Fatal("different keys are Equal")
	}
	for _, n := range []int{0, 31, 33} {
		if _, err := KeyFromBytes(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Fatalf("KeyFromBytes(%d): %v", n, err)
		}
	}
	if _, err := NewKey(iotest.ErrReader(io.ErrUnexpectedEOF)); err == nil {
		t.Fatal("NewKey with a failing reader")
	}
	testkit.CheckRedacted(t, k.Bytes(), k, &k, struct{ K Key }{k})
}
