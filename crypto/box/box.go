// Package box is Wisp's per-queue encryption layer: NaCl box (X25519 +
// XSalsa20-Poly1305) with a precomputed shared key and a fixed padded size,
// so the same ratchet envelope never appears twice on two queues and every
// queue message has one length.
//
// Usage (each side of a queue):
//
//	priv, err := box.GenerateKey(rand.Reader)
//	pub := priv.PublicKey()                      // send pub.Bytes() to the peer
//	peer, err := box.ParsePublicKey(peerBytes)
//	shared, err := box.Precompute(priv, peer)    // ErrLowOrder for a bad peer key
//	msg, err := box.Seal(rand.Reader, shared, envelope, box.MessageSize)
//	envelope, err := box.Open(shared, msg)
//
// A sealed message is nonce (24 random bytes) || secretbox(pad(plaintext)).
// The relay re-encrypts a delivered message with the nonce set to the 24-byte
// message ID: SealWithNonce/OpenWithNonce do that and omit the nonce from the
// output, since both sides already know it.
package box

import (
	"errors"
	"fmt"
	"io"

	"github.com/wisp-chat/wisp/crypto/internal/secret"
	"github.com/wisp-chat/wisp/crypto/pad"
	"golang.org/x/crypto/curve25519"
	naclbox "golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
)

const (
	// KeySize is the size of every key of this package.
	KeySize = 32
	// NonceSize is the size of a box nonce.
	NonceSize = 24
	// TagSize is the Poly1305 tag added by secretbox.
	TagSize = secretbox.Overhead
	// Overhead is what Seal adds around the padded plaintext.
	Overhead = NonceSize + TagSize

	// MessageSize is the fixed size of a queue message: the per-queue box
	// of a ratchet envelope plus agent framing, as sent with SEND.
	MessageSize = 16000
	// MaxMessagePlaintext is the most that fits in a MessageSize box.
	MaxMessagePlaintext = MessageSize - Overhead - pad.PrefixSize
)

// Errors returned by this package.
var (
	ErrKeySize  = errors.New("box: wrong key size")
	ErrLowOrder = errors.New("box: low-order or invalid public key (all-zero shared secret)")
	ErrSize     = errors.New("box: output size too small")
	ErrTooLong  = errors.New("box: plaintext too long for the output size")
	ErrDecrypt  = errors.New("box: message authentication failed")
	ErrPadding  = errors.New("box: malformed padding")
)

// Nonce is a 24-byte box nonce. It is not secret.
type Nonce [NonceSize]byte

// PublicKey is an X25519 public key of a queue. It is not secret.
type PublicKey struct{ b [KeySize]byte }

// ParsePublicKey reads a 32-byte public key. Low-order keys are refused by
// Precompute, where the check is exact.
func ParsePublicKey(b []byte) (PublicKey, error) {
	var k PublicKey
	if len(b) != KeySize {
		return k, fmt.Errorf("%w: %d", ErrKeySize, len(b))
	}
	copy(k.b[:], b)
	return k, nil
}

// Bytes returns a copy of the key bytes.
func (k PublicKey) Bytes() []byte { return append([]byte(nil), k.b[:]...) }

// Equal reports whether k and o are the same key.
func (k PublicKey) Equal(o PublicKey) bool { return k.b == o.b }

// PrivateKey is an X25519 private key of a queue.
type PrivateKey struct {
	_ [0]func() // not comparable: use Equal
	b [KeySize]byte
}

// GenerateKey reads a new private key from rand.
func GenerateKey(rand io.Reader) (PrivateKey, error) {
	var k PrivateKey
	if _, err := io.ReadFull(rand, k.b[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("box: generating key: %w", err)
	}
	return k, nil
}

// PrivateKeyFromBytes restores a private key saved with Bytes.
func PrivateKeyFromBytes(b []byte) (PrivateKey, error) {
	var k PrivateKey
	if len(b) != KeySize {
		return k, fmt.Errorf("%w: %d", ErrKeySize, len(b))
	}
	copy(k.b[:], b)
	return k, nil
}

// PublicKey returns the public key of k.
func (k PrivateKey) PublicKey() PublicKey {
	var p PublicKey
	out, err := curve25519.X25519(k.b[:], curve25519.Basepoint)
	if err != nil {
		panic(err) // the base point never gives a zero output
	}
	copy(p.b[:], out)
	return p
}

// Bytes returns a copy of the secret bytes, for encrypted storage only.
func (k PrivateKey) Bytes() []byte { return append([]byte(nil), k.b[:]...) }

// Equal reports whether k and o are the same key, in constant time.
func (k PrivateKey) Equal(o PrivateKey) bool { return secret.Equal(k.b[:], o.b[:]) }

// String never prints the key.
func (k PrivateKey) String() string { return secret.Redacted("box.PrivateKey") }

// GoString never prints the key.
func (k PrivateKey) GoString() string { return k.String() }

// Format never prints the key, whatever the verb.
func (k PrivateKey) Format(f fmt.State, _ rune) { secret.Format(f, "box.PrivateKey") }

// SharedKey is the precomputed XSalsa20-Poly1305 key of one queue direction.
type SharedKey struct {
	_ [0]func() // not comparable: use Equal
	b [KeySize]byte
}

// Precompute derives the shared key of priv and peer exactly as NaCl's
// crypto_box_beforenm does: HSalsa20(X25519(priv, peer), nonce 0). It refuses
// a peer key whose X25519 result is all zeros (every low-order point).
func Precompute(priv PrivateKey, peer PublicKey) (SharedKey, error) {
	var k SharedKey
	// X25519 returns an error exactly when the result is all zeros.
	s, err := curve25519.X25519(priv.b[:], peer.b[:])
	clear(s)
	if err != nil {
		return k, ErrLowOrder
	}
	pub, sk := peer.b, priv.b
	naclbox.Precompute(&k.b, &pub, &sk)
	clear(sk[:])
	return k, nil
}

// SharedKeyFromBytes restores a shared key saved with Bytes.
func SharedKeyFromBytes(b []byte) (SharedKey, error) {
	var k SharedKey
	if len(b) != KeySize {
		return k, fmt.Errorf("%w: %d", ErrKeySize, len(b))
	}
	copy(k.b[:], b)
	return k, nil
}

// Bytes returns a copy of the secret bytes, for encrypted storage only.
func (k SharedKey) Bytes() []byte { return append([]byte(nil), k.b[:]...) }

// Equal reports whether k and o are the same key, in constant time.
func (k SharedKey) Equal(o SharedKey) bool { return secret.Equal(k.b[:], o.b[:]) }

// String never prints the key.
func (k SharedKey) String() string { return secret.Redacted("box.SharedKey") }

// GoString never prints the key.
func (k SharedKey) GoString() string { return k.String() }

// Format never prints the key, whatever the verb.
func (k SharedKey) Format(f fmt.State, _ rune) { secret.Format(f, "box.SharedKey") }

// Seal pads msg and encrypts it under k with a random nonce read from rand.
// The result is exactly size bytes: nonce || secretbox(pad(msg, size-Overhead)).
func Seal(rand io.Reader, k SharedKey, msg []byte, size int) ([]byte, error) {
	var n Nonce
	if _, err := io.ReadFull(rand, n[:]); err != nil {
		return nil, fmt.Errorf("box: reading nonce: %w", err)
	}
	body, err := SealWithNonce(k, n, msg, size-NonceSize)
	if err != nil {
		return nil, err
	}
	return append(n[:], body...), nil
}

// Open decrypts a message made by Seal and removes the padding.
func Open(k SharedKey, sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead+pad.PrefixSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrDecrypt, len(sealed))
	}
	var n Nonce
	copy(n[:], sealed)
	return OpenWithNonce(k, n, sealed[NonceSize:])
}

// SealWithNonce pads msg and encrypts it under k with the given nonce. The
// result is exactly size bytes: secretbox(pad(msg, size-TagSize)), without
// the nonce. The caller must never use a nonce twice with one key; the relay
// uses the random 24-byte message ID.
func SealWithNonce(k SharedKey, n Nonce, msg []byte, size int) ([]byte, error) {
	if size < TagSize+pad.PrefixSize {
		return nil, fmt.Errorf("%w: %d", ErrSize, size)
	}
	p, err := pad.Pad(msg, size-TagSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTooLong, err)
	}
	nn := [NonceSize]byte(n)
	return secretbox.Seal(nil, p, &nn, &k.b), nil
}

// OpenWithNonce decrypts a message made by SealWithNonce.
func OpenWithNonce(k SharedKey, n Nonce, sealed []byte) ([]byte, error) {
	nn := [NonceSize]byte(n)
	p, ok := secretbox.Open(nil, sealed, &nn, &k.b)
	if !ok {
		return nil, ErrDecrypt
	}
	msg, err := pad.Unpad(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPadding, err)
	}
	return msg, nil
}
