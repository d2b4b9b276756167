package authkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// TestDummyIsAPoint: a signature made with the dummy's seed verifies
// against it, which only a valid curve point allows; the label changes
// the key.
func TestDummyIsAPoint(t *testing.T) {
	a, b := Dummy("wisp relay: no such queue"), Dummy("wisp relay: no such chunk")
	if a == b {
		t.Fatal("labels give the same key")
	}
	msg := make([]byte, 32)
	_, _ = rand.Read(msg)
	seedKey := ed25519.NewKeyFromSeed(sha256Of("wisp relay: no such queue"))
	if !ed25519.Verify(a[:], msg, ed25519.Sign(seedKey, msg)) {
		t.Fatal("dummy key does not verify its own signature: not a valid point")
	}
}

func sha256Of(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// BenchmarkVerify compares the work of verifying against the dummy key
// with a real key's, and with the bytes used before (a hash, not a curve
// point, on which verification stops early).
func BenchmarkVerify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 32)
	sig := ed25519.Sign(priv, msg)
	dummy := Dummy("wisp relay: no such queue")
	notAPoint := sha256.Sum256([]byte("wisp relay: no such queue"))
	for _, k := range []struct {
		name string
		key  []byte
	}{{"real key", pub}, {"dummy", dummy[:]}, {"hash, not a point (before)", notAPoint[:]}} {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				ed25519.Verify(k.key, msg, sig)
			}
		})
	}
}
