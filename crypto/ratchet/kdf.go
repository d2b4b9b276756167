package ratchet

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
)

// KDF labels (HKDF info strings). See SPEC.md.
const (
	labelAD      = "wisp/v1/ratchet/ad"
	labelX3DH    = "wisp/v1/ratchet/x3dh"
	labelRoot    = "wisp/v1/ratchet/root"
	labelMessage = "wisp/v1/ratchet/message"
)

// Distinct types for each role of a 32-byte secret inside the ratchet.
type (
	rootKey    [32]byte
	chainKey   [32]byte
	headerKey  [32]byte
	messageKey [32]byte
	dhPrivate  [32]byte
)

func hkdfKey(secret, salt []byte, info string, n int) []byte {
	out, err := hkdf.Key(sha256.New, secret, salt, info, n)
	if err != nil {
		panic(err) // only for n > 255*32, a programmer error
	}
	return out
}

// dh is X25519 refusing an all-zero result (every low-order public key).
func dh(priv dhPrivate, pub PublicKey) ([]byte, error) {
	out, err := curve25519.X25519(priv[:], pub.b[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLowOrder, err)
	}
	return out, nil
}

func publicOf(priv dhPrivate) PublicKey {
	out, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		panic(err) // the base point never gives a zero output
	}
	var p PublicKey
	copy(p.b[:], out)
	return p
}

// kdfRoot is KDF_RK: HKDF-SHA256(salt = rk, ikm = dhOut || kemSecret,
// info = labelRoot) → new root key, chain key, next header key.
func kdfRoot(rk rootKey, dhOut, kemSecret []byte) (rootKey, chainKey, headerKey) {
	ikm := append(append([]byte(nil), dhOut...), kemSecret...)
	out := hkdfKey(ikm, rk[:], labelRoot, 96)
	clear(ikm)
	r, c, h := rootKey(out[0:32]), chainKey(out[32:64]), headerKey(out[64:96])
	clear(out)
	return r, c, h
}

// kdfChain is KDF_CK: message key = HMAC-SHA256(ck, 0x01), next chain key =
// HMAC-SHA256(ck, 0x02).
func kdfChain(ck chainKey) (chainKey, messageKey) {
	m := hmac.New(sha256.New, ck[:])
	m.Write([]byte{1})
	mk := messageKey(m.Sum(nil))
	m.Reset()
	m.Write([]byte{2})
	next := chainKey(m.Sum(nil))
	return next, mk
}

// messageAEAD expands a message key into a ChaCha20-Poly1305 key and nonce.
func messageAEAD(mk messageKey) (aead cipher.AEAD, nonce []byte) {
	out := hkdfKey(mk[:], nil, labelMessage, chacha20poly1305.KeySize+chacha20poly1305.NonceSize)
	a, err := chacha20poly1305.New(out[:chacha20poly1305.KeySize])
	if err != nil {
		panic(err) // fixed key size
	}
	n := append([]byte(nil), out[chacha20poly1305.KeySize:]...)
	clear(out)
	return a, n
}

func headerAEAD(hk headerKey) cipher.AEAD {
	a, err := chacha20poly1305.New(hk[:])
	if err != nil {
		panic(err) // fixed key size
	}
	return a
}
