package store

import (
	"crypto/rand"
	"errors"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// aeadSealer is a minimal real Sealer for these tests: XChaCha20-Poly1305
// with the record name as associated data. The profile code uses
// crypto/vault; these tests check the store's own guarantees.
type aeadSealer struct{ key []byte }

func newSealer(t *testing.T) Sealer {
	t.Helper()
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return aeadSealer{key}
}

func (s aeadSealer) Seal(name string, plaintext []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(s.key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plaintext, []byte(name)), nil
}

func (s aeadSealer) Open(name string, sealed []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(s.key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("short record")
	}
	return aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(name))
}
