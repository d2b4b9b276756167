package stream

import (
	"bytes"
	"io"
	"testing"
)

const benchSize = 4 << 20

func BenchmarkEncrypt(b *testing.B) {
	k := testKey(b)
	pt := make([]byte, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		w := NewWriter(io.Discard, k)
		if _, err := w.Write(pt); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	k := testKey(b)
	ct := encrypt(b, k, make([]byte, benchSize), ChunkSize, 1<<20)
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := io.Copy(io.Discard, NewReader(bytes.NewReader(ct), k)); err != nil {
			b.Fatal(err)
		}
	}
}
