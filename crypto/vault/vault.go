// Package vault encrypts Wisp's state at rest: a random data key, wrapped
// under a passphrase with Argon2id (or kept as is in "no passphrase" mode),
// and records sealed with XChaCha20-Poly1305 where the record's name is
// associated data, so a record cannot be swapped for another.
//
// Usage:
//
//	key, err := vault.NewKey(rand.Reader)
//	wrapped, err := vault.Wrap(rand.Reader, key, passphrase, vault.DefaultParams())
//	// store wrapped (WrappedSize bytes); later:
//	key, err := vault.Unwrap(passphrase, wrapped)    // ErrWrongPassphrase
//
//	rec, err := vault.Seal(rand.Reader, key, "msg/0001", plaintext)
//	plaintext, err := vault.Open(key, "msg/0001", rec)
//
// Raising the Argon2id parameters or changing the passphrase only rewraps
// the data key (Unwrap, then Wrap): records are untouched. Without a
// passphrase, store key.Bytes() instead of a wrapped key.
package vault

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/wisp-chat/wisp/crypto/internal/secret"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

const (
	// Version is the first byte of wrapped keys and records.
	Version = 1
	// KeySize is the size of the data key.
	KeySize = chacha20poly1305.KeySize
	// SaltSize is the size of the Argon2id salt.
	SaltSize = 16
	// NonceSize is the XChaCha20-Poly1305 nonce size.
	NonceSize = chacha20poly1305.NonceSizeX
	// TagSize is the authentication tag size.
	TagSize = chacha20poly1305.Overhead

	kdfArgon2id   = 1
	paramsSize    = 4 + 4 + 1
	wrapPrefix    = 1 + 1 + paramsSize + SaltSize + NonceSize
	recordPrefix  = 1 + NonceSize
	labelWrap     = "wisp/v1/vault/wrap"
	labelRecord   = "wisp/v1/vault/record"
	argonKeySize  = KeySize
	minMemoryPerT = 8 // Argon2 needs at least 8 KiB per lane
)

// WrappedSize is the size of a wrapped key.
const WrappedSize = wrapPrefix + KeySize + TagSize

// RecordOverhead is what Seal adds to a plaintext.
const RecordOverhead = recordPrefix + TagSize

// Default Argon2id parameters (about 0.35–0.5 s in the browser) and the
// bounds Unwrap accepts, so a forged header cannot make it allocate
// unbounded memory or loop for minutes.
const (
	DefaultMemoryKiB = 64 << 10
	DefaultTime      = 3
	DefaultThreads   = 1

	MaxMemoryKiB = 1 << 20 // 1 GiB
	MaxTime      = 64
	MaxThreads   = 16
)

// Errors returned by this package.
var (
	ErrKeySize         = errors.New("vault: wrong key size")
	ErrParams          = errors.New("vault: Argon2id parameters out of bounds")
	ErrMalformed       = errors.New("vault: malformed input")
	ErrVersion         = errors.New("vault: unsupported version")
	ErrWrongPassphrase = errors.New("vault: wrong passphrase or corrupted key")
	ErrDecrypt         = errors.New("vault: record authentication failed (wrong key, name or corrupted)")
)

// Params are Argon2id cost parameters.
type Params struct {
	MemoryKiB uint32 // memory in KiB
	Time      uint32 // passes
	Threads   uint8  // lanes
}

// DefaultParams returns 64 MiB, t=3, p=1.
func DefaultParams() Params {
	return Params{MemoryKiB: DefaultMemoryKiB, Time: DefaultTime, Threads: DefaultThreads}
}

// Validate checks p against the accepted bounds.
func (p Params) Validate() error {
	if p.Threads < 1 || p.Threads > MaxThreads || p.Time < 1 || p.Time > MaxTime ||
		p.MemoryKiB < minMemoryPerT*uint32(p.Threads) || p.MemoryKiB > MaxMemoryKiB {
		return fmt.Errorf("%w: m=%d KiB t=%d p=%d", ErrParams, p.MemoryKiB, p.Time, p.Threads)
	}
	return nil
}

// Key is a vault data key.
type Key struct {
	_ [0]func() // not comparable: use Equal
	b [KeySize]byte
}

// NewKey reads a new random data key from rand.
func NewKey(rand io.Reader) (Key, error) {
	var k Key
	if _, err := io.ReadFull(rand, k.b[:]); err != nil {
		return Key{}, fmt.Errorf("vault: generating key: %w", err)
	}
	return k, nil
}

// KeyFromBytes restores a key saved with Bytes (no-passphrase mode).
func KeyFromBytes(b []byte) (Key, error) {
	var k Key
	if len(b) != KeySize {
		return k, fmt.Errorf("%w: %d", ErrKeySize, len(b))
	}
	copy(k.b[:], b)
	return k, nil
}

// Bytes returns a copy of the secret bytes.
func (k Key) Bytes() []byte { return append([]byte(nil), k.b[:]...) }

// Equal reports whether k and o are the same key, in constant time.
func (k Key) Equal(o Key) bool { return secret.Equal(k.b[:], o.b[:]) }

// String never prints the key.
func (k Key) String() string { return secret.Redacted("vault.Key") }

// GoString never prints the key.
func (k Key) GoString() string { return k.String() }

// Format never prints the key, whatever the verb.
func (k Key) Format(f fmt.State, _ rune) { secret.Format(f, "vault.Key") }

func newAEAD(key []byte) cipher.AEAD {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic(err) // fixed key size
	}
	return a
}

// Wrap encrypts k under a key derived from passphrase with Argon2id(p) and
// a fresh salt. Layout: version || kdf || memory || time || threads || salt
// || nonce || XChaCha20-Poly1305(kek, k, ad = label || the bytes before).
func Wrap(rand io.Reader, k Key, passphrase []byte, p Params) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	out := make([]byte, wrapPrefix, WrappedSize)
	out[0], out[1] = Version, kdfArgon2id
	binary.BigEndian.PutUint32(out[2:], p.MemoryKiB)
	binary.BigEndian.PutUint32(out[6:], p.Time)
	out[10] = p.Threads
	if _, err := io.ReadFull(rand, out[11:wrapPrefix]); err != nil {
		return nil, fmt.Errorf("vault: reading salt and nonce: %w", err)
	}
	kek := deriveKEK(passphrase, out[11:11+SaltSize], p)
	defer clear(kek)
	return newAEAD(kek).Seal(out, out[11+SaltSize:wrapPrefix], k.b[:], wrapAD(out)), nil
}

// WrappedParams returns the Argon2id parameters stored in a wrapped key,
// so the caller can decide to rewrap with stronger ones.
func WrappedParams(wrapped []byte) (Params, error) {
	if len(wrapped) != WrappedSize {
		return Params{}, fmt.Errorf("%w: wrapped key of %d bytes", ErrMalformed, len(wrapped))
	}
	if wrapped[0] != Version {
		return Params{}, fmt.Errorf("%w: %d", ErrVersion, wrapped[0])
	}
	if wrapped[1] != kdfArgon2id {
		return Params{}, fmt.Errorf("%w: KDF %d", ErrMalformed, wrapped[1])
	}
	p := Params{
		MemoryKiB: binary.BigEndian.Uint32(wrapped[2:]),
		Time:      binary.BigEndian.Uint32(wrapped[6:]),
		Threads:   wrapped[10],
	}
	return p, p.Validate()
}

// Unwrap recovers the data key from a wrapped key. A wrong passphrase and
// a corrupted wrapped key both give ErrWrongPassphrase.
func Unwrap(passphrase, wrapped []byte) (Key, error) {
	p, err := WrappedParams(wrapped)
	if err != nil {
		return Key{}, err
	}
	kek := deriveKEK(passphrase, wrapped[11:11+SaltSize], p)
	defer clear(kek)
	return openWrapped(kek, wrapped)
}

// openWrapped decrypts a wrapped key of valid layout with kek.
func openWrapped(kek, wrapped []byte) (Key, error) {
	raw, err := newAEAD(kek).Open(nil, wrapped[11+SaltSize:wrapPrefix], wrapped[wrapPrefix:], wrapAD(wrapped[:wrapPrefix]))
	if err != nil {
		return Key{}, ErrWrongPassphrase
	}
	k, err := KeyFromBytes(raw)
	clear(raw)
	return k, err
}

func deriveKEK(passphrase, salt []byte, p Params) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, argonKeySize)
}

func wrapAD(prefix []byte) []byte {
	return append([]byte(labelWrap), prefix[:wrapPrefix]...)
}

func recordAD(name string, version byte) []byte {
	ad := append([]byte(labelRecord), 0, version)
	return append(ad, name...)
}

// Seal encrypts a record under k. Layout: version || nonce (24, random) ||
// XChaCha20-Poly1305(k, plaintext, ad = label || 0x00 || version || name).
func Seal(rand io.Reader, k Key, name string, plaintext []byte) ([]byte, error) {
	out := make([]byte, recordPrefix, recordPrefix+len(plaintext)+TagSize)
	out[0] = Version
	if _, err := io.ReadFull(rand, out[1:recordPrefix]); err != nil {
		return nil, fmt.Errorf("vault: reading nonce: %w", err)
	}
	return newAEAD(k.b[:]).Seal(out, out[1:recordPrefix], plaintext, recordAD(name, Version)), nil
}

// Open decrypts a record sealed under k with the same name.
func Open(k Key, name string, record []byte) ([]byte, error) {
	if len(record) < RecordOverhead {
		return nil, fmt.Errorf("%w: record of %d bytes", ErrMalformed, len(record))
	}
	if record[0] != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, record[0])
	}
	pt, err := newAEAD(k.b[:]).Open(nil, record[1:recordPrefix], record[recordPrefix:], recordAD(name, record[0]))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
