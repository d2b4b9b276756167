//go:build !js

package stream

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

// FuzzStreamDecrypt decrypts arbitrary bytes with a fixed key, with the
// real chunk size and with 64-byte chunks. Decryption must never panic, and
// anything it accepts must re-encrypt to exactly the same bytes (STREAM is
// deterministic for a given key), so no second ciphertext of a plaintext
// is ever accepted.
func FuzzStreamDecrypt(f *testing.F) {
	k := testKey(f)
	for _, n := range []int{0, 1, 63, 64, 65, 200} {
		f.Add(encrypt(f, k, testkit.Bytes(testkit.Rand("fuzz"), n), 64, 1<<20))
	}
	f.Add(encrypt(f, k, []byte("real size"), ChunkSize, 1<<20))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, ct []byte) {
		for _, chunk := range []int{64, ChunkSize} {
			pt, err := decrypt(k, ct, chunk)
			if err != nil {
				continue
			}
			if again := encrypt(t, k, pt, chunk, 1<<20); !bytes.Equal(again, ct) {
				t.Fatalf("accepted a ciphertext that is not the encryption of its plaintext")
			}
		}
	})
}

// TestWriteFuzzSeeds writes the committed seed corpus (with -update).
func TestWriteFuzzSeeds(t *testing.T) {
	if !testkit.Updating() {
		t.Skip("run with -update to rewrite testdata/fuzz")
	}
	k := testKey(t)
	for _, n := range []int{0, 5, 64, 130} {
		testkit.WriteFuzzSeed(t, "FuzzStreamDecrypt", fmt.Sprintf("chunks64_%d", n),
			encrypt(t, k, testkit.Bytes(testkit.Rand("seed"), n), 64, 1<<20))
	}
	testkit.WriteFuzzSeed(t, "FuzzStreamDecrypt", "full_size", encrypt(t, k, []byte("full size chunk"), ChunkSize, 1<<20))
	testkit.WriteFuzzSeed(t, "FuzzStreamDecrypt", "empty", []byte{})
}
