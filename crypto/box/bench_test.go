package box

import (
	"crypto/rand"
	"testing"
)

func BenchmarkSeal(b *testing.B) {
	k, _ := sharedPair(b)
	msg := make([]byte, MaxMessagePlaintext)
	b.SetBytes(MessageSize)
	for b.Loop() {
		if _, err := Seal(rand.Reader, k, msg, MessageSize); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k, k2 := sharedPair(b)
	sealed, _ := Seal(rand.Reader, k, make([]byte, MaxMessagePlaintext), MessageSize)
	b.SetBytes(MessageSize)
	for b.Loop() {
		if _, err := Open(k2, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPrecompute(b *testing.B) {
	a, _ := keyPair(b, "a")
	_, bp := keyPair(b, "b")
	for b.Loop() {
		if _, err := Precompute(a, bp); err != nil {
			b.Fatal(err)
		}
	}
}
