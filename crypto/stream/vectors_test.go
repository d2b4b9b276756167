package stream

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

//go:embed testdata/vectors.json
var vectorsJSON []byte

// streamVector: the plaintext is the first Length bytes of
// testkit.Rand(PlaintextSeed); small ciphertexts are given in full, every
// ciphertext by its SHA-256.
type streamVector struct {
	Key            string `json:"key"`
	PlaintextSeed  string `json:"plaintext_seed"`
	Length         int    `json:"length"`
	CiphertextSize int64  `json:"ciphertext_size"`
	Ciphertext     string `json:"ciphertext,omitempty"`
	SHA256         string `json:"ciphertext_sha256"`
}

func TestVectors(t *testing.T) {
	var got []streamVector
	r := testkit.Rand("vectors/stream")
	for _, n := range []int{0, 1, 100, ChunkSize, ChunkSize + 1, 200_000} {
		k, _ := NewKey(r)
		seed := "vectors/stream/plaintext"
		ct := encrypt(t, k, testkit.Bytes(testkit.Rand(seed), n), ChunkSize, 1<<20)
		sum := sha256.Sum256(ct)
		v := streamVector{Key: hex.EncodeToString(k.Bytes()), PlaintextSeed: seed, Length: n,
			CiphertextSize: int64(len(ct)), SHA256: hex.EncodeToString(sum[:])}
		if n <= 100 {
			v.Ciphertext = hex.EncodeToString(ct)
		}
		got = append(got, v)
	}
	data := testkit.CheckVectors(t, "testdata/vectors.json", vectorsJSON, testkit.JSON(t, got))
	var vs []streamVector
	testkit.Decode(t, data, &vs)
	for _, v := range vs {
		kb, _ := hex.DecodeString(v.Key)
		k, err := KeyFromBytes(kb)
		if err != nil {
			t.Fatal(err)
		}
		pt := testkit.Bytes(testkit.Rand(v.PlaintextSeed), v.Length)
		ct := encrypt(t, k, pt, ChunkSize, 1<<20)
		sum := sha256.Sum256(ct)
		if hex.EncodeToString(sum[:]) != v.SHA256 || CiphertextSize(int64(v.Length)) != v.CiphertextSize {
			t.Fatalf("length %d: ciphertext differs", v.Length)
		}
		if v.Ciphertext != "" {
			want, _ := hex.DecodeString(v.Ciphertext)
			back, err := decrypt(k, want, ChunkSize)
			if err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("length %d: %v", v.Length, err)
			}
		}
	}
}
