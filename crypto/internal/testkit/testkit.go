// Package testkit is shared by the tests of the Wisp crypto packages and
// must never be used for real keys: a deterministic random source, the
// check of committed test vectors, seed corpus files for fuzz targets, and
// the check that secret types never print their bytes.
//
// Rand(label) is the ChaCha20 keystream (RFC 8439 block function, 96-bit
// nonce of zeros, counter starting at 0) under the key SHA-256(label). A
// second implementation can reproduce every vector in testdata/ from this
// rule and the order of reads documented in crypto/SPEC.md.
//
// Vectors are generated from fixed seeds and compared with the committed
// copy; -update rewrites it:
//
//	//go:embed testdata/vectors.json
//	var vectorsJSON []byte
//
//	func TestVectors(t *testing.T) {
//		data := testkit.CheckVectors(t, "testdata/vectors.json", vectorsJSON, testkit.JSON(t, generate(t)))
//		// ... decode data and verify it without the generator
//	}
//
// Test files embed the vectors (go:embed) so the comparison also runs under
// GOOS=js in a browser, where there is no file system.
package testkit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/chacha20"
)

type reader struct{ c *chacha20.Cipher }

// Rand returns a deterministic reader seeded by label.
func Rand(label string) io.Reader {
	key := sha256.Sum256([]byte(label))
	c, err := chacha20.NewUnauthenticatedCipher(key[:], make([]byte, chacha20.NonceSize))
	if err != nil {
		panic(err) // fixed sizes: cannot happen
	}
	return &reader{c: c}
}

func (r *reader) Read(p []byte) (int, error) {
	clear(p)
	r.c.XORKeyStream(p, p)
	return len(p), nil
}

// Bytes reads n bytes from r, panicking on error (test helper).
func Bytes(r io.Reader, n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		panic(err)
	}
	return b
}

var update = flag.Bool("update", false, "rewrite the test vectors under testdata/")

// JSON encodes v as indented JSON with a final newline.
func JSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// CheckVectors fails t unless got equals the committed vectors; with -update it
// writes got to path instead. It returns the vectors the rest of the test
// should verify independently (got when updating, committed otherwise).
func CheckVectors(t testing.TB, path string, committed, got []byte) []byte {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(got))
		return got
	}
	if !bytes.Equal(committed, got) {
		t.Fatalf("generated vectors differ from %s; run go test -run TestVectors -update if the change is intended", path)
	}
	return committed
}

// Updating reports whether the test runs with -update.
func Updating() bool { return *update }

// WriteFuzzSeed writes one seed corpus entry for a fuzz target, in the
// format of testdata/fuzz/<Target>/<name>. Each value must be a []byte or a
// string.
func WriteFuzzSeed(t testing.TB, target, name string, values ...any) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		default:
			t.Fatalf("unsupported seed value %T", v)
		}
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Decode parses committed vectors into v.
func Decode(t testing.TB, committed []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(committed, v); err != nil {
		t.Fatal(err)
	}
}

// Unhex decodes a hex string, failing t on error.
func Unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CheckRedacted fails t if any common fmt verb applied to any of values
// (a secret type, a pointer to it, or a struct holding it) prints the
// first bytes of secretBytes in hex, or prints anything but a redaction.
func CheckRedacted(t testing.TB, secretBytes []byte, values ...any) {
	t.Helper()
	needle := hex.EncodeToString(secretBytes[:8])
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(strings.ToLower(out), needle) {
				t.Fatalf("%s printed secret bytes: %s", verb, out)
			}
			if !strings.Contains(out, "redacted") {
				t.Fatalf("%s: %q is not redacted", verb, out)
			}
		}
	}
}
