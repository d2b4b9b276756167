package webcrypto

import (
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// TestSHA256 compares WebCrypto with crypto/sha256 for empty, small and
// large inputs split into parts at odd places.
func TestSHA256(t *testing.T) {
	big := make([]byte, 5<<20+3)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	for _, parts := range [][][]byte{
		nil,
		{{}},
		{[]byte("abc")},
		{[]byte("wisp file transmission v1"), big[:32], big[32:]},
		{big[:1], big[1 : 4<<20], big[4<<20:]},
	} {
		var all []byte
		for _, p := range parts {
			all = append(all, p...)
		}
		got, err := SHA256(parts...)
		if err != nil || got != sha256.Sum256(all) {
			t.Errorf("%d parts, %d bytes: %x, %v", len(parts), len(all), got, err)
		}
	}
	// Start copies: changing the input afterwards changes nothing.
	b := []byte("immutable")
	wait := Start(b)
	b[0] = 'X'
	if got, _ := wait(); got != sha256.Sum256([]byte("immutable")) {
		t.Error("Start did not copy its input")
	}
}
