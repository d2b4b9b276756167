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
