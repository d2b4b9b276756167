//go:build !js

package vault

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

// FuzzVaultDecrypt opens arbitrary records under arbitrary names with a
// fixed key. It must never panic, and anything accepted must be exactly
// what Seal produces for that name, plaintext and nonce.
func FuzzVaultDecrypt(f *testing.F) {
	k := testKey(f, "vault/key")
	r := testkit.Rand("vault/fuzz")
	for _, name := range []string{"", "msg/1", "profile"} {
		rec, _ := Seal(r, k, name, []byte("seed "+name))
		f.Add(rec, name)
	}
	f.Add([]byte{}, "x")
	f.Add([]byte{Version}, "")
	f.Fuzz(func(t *testing.T, rec []byte, name string) {
		pt, err := Open(k, name, rec)
		if err != nil {
			return
		}
		again, err := Seal(bytes.NewReader(rec[1:recordPrefix]), k, name, pt)
		if err != nil || !bytes.Equal(again, rec) {
			t.Fatal("accepted a record Seal would not produce")
		}
	})
}

// TestWriteFuzzSeeds writes the committed seed corpus (with -update).
func TestWriteFuzzSeeds(t *testing.T) {
	if !testkit.Updating() {
		t.Skip("run with -update to rewrite testdata/fuzz")
	}
	k := testKey(t, "vault/key")
	r := testkit.Rand("vault/seeds")
	for i, name := range []string{"msg/000001", "profile", ""} {
		rec, _ := Seal(r, k, name, []byte("seed record "+name))
		testkit.WriteFuzzSeed(t, "FuzzVaultDecrypt", fmt.Sprintf("valid_%d", i), rec, name)
	}
	testkit.WriteFuzzSeed(t, "FuzzVaultDecrypt", "short", []byte{Version, 1, 2}, "msg/000001")
}
