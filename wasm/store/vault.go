package store

import (
	"crypto/rand"

	"github.com/wisp-chat/wisp/crypto/vault"
)

// VaultSealer returns the Sealer of a profile: crypto/vault records under
// the profile's data key, with the record's full name as associated data.
func VaultSealer(k vault.Key) Sealer { return vaultSealer{k} }

type vaultSealer struct{ k vault.Key }

func (s vaultSealer) Seal(name string, plaintext []byte) ([]byte, error) {
	return vault.Seal(rand.Reader, s.k, name, plaintext)
}

func (s vaultSealer) Open(name string, sealed []byte) ([]byte, error) {
	return vault.Open(s.k, name, sealed)
}
