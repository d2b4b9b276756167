package store

import (
	"crypto/rand"
	"testing"

	"github.com/wisp-chat/wisp/crypto/vault"
)

// newSealer returns the production sealer with a fresh random key.
func newSealer(t *testing.T) Sealer {
	t.Helper()
	k, err := vault.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return VaultSealer(k)
}
