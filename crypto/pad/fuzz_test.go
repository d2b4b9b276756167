//go:build !js

package pad

import (
	"bytes"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

func FuzzUnpad(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 2, 'h', 'i', 0, 0})
	f.Add([]byte{0, 9, 1})
	f.Add([]byte{0, 1, 'x', 1})
	f.Fuzz(func(t *testing.T, buf []byte) {
		msg, err := Unpad(buf)
		if err != nil {
			return
		}
		// Whatever unpads must pad back to exactly the same bytes.
		again, err := Pad(msg, len(buf))
		if err != nil {
			t.Fatalf("Pad after Unpad: %v", err)
		}
		if !bytes.Equal(again, buf) {
			t.Fatalf("Pad(Unpad(b)) != b")
		}
	})
}

// TestWriteFuzzSeeds writes the committed seed corpus (with -update).
func TestWriteFuzzSeeds(t *testing.T) {
	if !testkit.Updating() {
		t.Skip("run with -update to rewrite testdata/fuzz")
	}
	for name, b := range map[string][]byte{
		"empty": {}, "zero": {0, 0}, "valid": {0, 2, 'h', 'i', 0, 0},
		"too_long": {0, 9, 1}, "bad_fill": {0, 1, 'x', 1}, "one_byte": {7},
	} {
		testkit.WriteFuzzSeed(t, "FuzzUnpad", name, b)
	}
}
