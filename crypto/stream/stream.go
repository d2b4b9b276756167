// Package stream encrypts files of any length with a random key as a
// sequence of fixed-size ChaCha20-Poly1305 chunks (the STREAM construction,
// as in age), in bounded memory.
//
// Usage:
//
//	key, err := stream.NewKey(rand.Reader)     // send key.Bytes() in the file description
//	w := stream.NewWriter(dst, key)
//	_, err = io.Copy(w, file)
//	err = w.Close()                            // writes the last chunk; dst is not closed
//	size := stream.CiphertextSize(fileSize)    // exact, known before encrypting
//
//	r := stream.NewReader(src, key)
//	_, err = io.Copy(out, r)                   // fails on any tampering
//
// Every chunk but the last carries exactly ChunkSize plaintext bytes; the
// last carries 0..ChunkSize bytes (0 only when the whole file is empty). The
// 12-byte nonce of chunk i is i as an 11-byte big-endian counter followed by
// 0x01 for the last chunk and 0x00 otherwise, so truncation, reordering,
// duplication and extension all fail authentication. The reader returns
// plaintext only after the chunk holding it has been authenticated; a
// tampered file may still yield its authentic leading chunks before the error.
package stream

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/wisp-chat/wisp/crypto/internal/secret"
	"golang.org/x/crypto/chacha20poly1305"
)

const (
	// KeySize is the size of a file key.
	KeySize = chacha20poly1305.KeySize
	// ChunkSize is the plaintext size of every chunk but the last.
	ChunkSize = 64 << 10
	// TagSize is the authentication tag added to every chunk.
	TagSize = chacha20poly1305.Overhead
	// EncryptedChunkSize is the ciphertext size of every chunk but the last.
	EncryptedChunkSize = ChunkSize + TagSize
)

// Errors returned by this package.
var (
	ErrKeySize = errors.New("stream: wrong key size")
	ErrDecrypt = errors.New("stream: chunk authentication failed (tampered, truncated, reordered or extended)")
	ErrSize    = errors.New("stream: impossible ciphertext size")
	ErrClosed  = errors.New("stream: write after Close")
	ErrCounter = errors.New("stream: chunk counter exhausted")
)

// Key is the random key of one file.
type Key struct {
	_ [0]func() // not comparable: use Equal
	b [KeySize]byte
}

// NewKey reads a new key from rand.
func NewKey(rand io.Reader) (Key, error) {
	var k Key
	if _, err := io.ReadFull(rand, k.b[:]); err != nil {
		return Key{}, fmt.Errorf("stream: generating key: %w", err)
	}
	return k, nil
}

// KeyFromBytes restores a key saved with Bytes.
func KeyFromBytes(b []byte) (Key, error) {
	var k Key
	if len(b) != KeySize {
		return k, fmt.Errorf("%w: %d", ErrKeySize, len(b))
	}
	copy(k.b[:], b)
	return k, nil
}

// Bytes returns a copy of the secret bytes, to send inside the E2E channel.
func (k Key) Bytes() []byte { return append([]byte(nil), k.b[:]...) }

// Equal reports whether k and o are the same key, in constant time.
func (k Key) Equal(o Key) bool { return secret.Equal(k.b[:], o.b[:]) }

// String never prints the key.
func (k Key) String() string { return secret.Redacted("stream.Key") }

// GoString never prints the key.
func (k Key) GoString() string { return k.String() }

// Format never prints the key, whatever the verb.
func (k Key) Format(f fmt.State, _ rune) { secret.Format(f, "stream.Key") }

// chunks returns how many chunks a plaintext of size n is split into.
func chunks(n int64) int64 {
	if n == 0 {
		return 1
	}
	return (n + ChunkSize - 1) / ChunkSize
}

// CiphertextSize returns the exact encrypted size of a plaintext of
// plaintextSize bytes. It panics if plaintextSize is negative.
func CiphertextSize(plaintextSize int64) int64 {
	if plaintextSize < 0 {
		panic("stream: negative size")
	}
	return plaintextSize + chunks(plaintextSize)*TagSize
}

// PlaintextSize is the inverse of CiphertextSize; it fails with ErrSize for
// a size no plaintext encrypts to.
func PlaintextSize(ciphertextSize int64) (int64, error) {
	if ciphertextSize < TagSize {
		return 0, fmt.Errorf("%w: %d", ErrSize, ciphertextSize)
	}
	full := (ciphertextSize - 1) / EncryptedChunkSize // chunks before the last
	last := ciphertextSize - full*EncryptedChunkSize
	if last < TagSize || full > 0 && last == TagSize {
		return 0, fmt.Errorf("%w: %d", ErrSize, ciphertextSize)
	}
	return full*ChunkSize + last - TagSize, nil
}

func newAEAD(k Key) cipher.AEAD {
	a, err := chacha20poly1305.New(k.b[:])
	if err != nil {
		panic(err) // fixed key size
	}
	return a
}

func nonce(counter uint64, last bool) []byte {
	n := make([]byte, chacha20poly1305.NonceSize)
	binary.BigEndian.PutUint64(n[3:11], counter)
	if last {
		n[11] = 1
	}
	return n
}

// Writer encrypts what is written to it. It holds one chunk in memory.
type Writer struct {
	chunk   int // plaintext chunk size: ChunkSize (smaller only in tests)
	dst     io.Writer
	aead    cipher.AEAD
	buf     []byte // plaintext of the pending chunk
	out     []byte
	counter uint64
	closed  bool
	err     error
}

// NewWriter returns a Writer that encrypts to dst under k.
func NewWriter(dst io.Writer, k Key) *Writer {
	return newWriter(dst, k, ChunkSize)
}

func newWriter(dst io.Writer, k Key, chunk int) *Writer {
	return &Writer{chunk: chunk, dst: dst, aead: newAEAD(k), buf: make([]byte, 0, chunk)}
}

// Write encrypts p. A full chunk is written out only when more data
// follows it, since only Close knows which chunk is the last.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		if len(w.buf) == w.chunk {
			if err := w.flush(false); err != nil {
				return written, err
			}
		}
		n := copy(w.buf[len(w.buf):w.chunk], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
		written += n
	}
	return written, nil
}

// Close writes the last chunk. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	return w.flush(true)
}

func (w *Writer) flush(last bool) error {
	if w.counter == math.MaxUint64 {
		w.err = ErrCounter
		return w.err
	}
	w.out = w.aead.Seal(w.out[:0], nonce(w.counter, last), w.buf, nil)
	w.counter++
	w.buf = w.buf[:0]
	if _, err := w.dst.Write(w.out); err != nil {
		w.err = fmt.Errorf("stream: %w", err)
		return w.err
	}
	return nil
}

// Reader decrypts a stream made by Writer. It holds one chunk in memory.
type Reader struct {
	chunk   int // ciphertext chunk size: EncryptedChunkSize (smaller only in tests)
	src     io.Reader
	aead    cipher.AEAD
	in      []byte // ciphertext buffer: one chunk plus one byte of look-ahead
	ahead   bool   // in[chunk] holds the first byte of the next chunk
	plain   []byte // decrypted bytes not yet returned
	counter uint64
	done    bool
	err     error
}

// NewReader returns a Reader that decrypts src under k.
func NewReader(src io.Reader, k Key) *Reader {
	return newReader(src, k, ChunkSize)
}

func newReader(src io.Reader, k Key, chunk int) *Reader {
	return &Reader{chunk: chunk + TagSize, src: src, aead: newAEAD(k), in: make([]byte, chunk+TagSize+1)}
}

// Read returns authenticated plaintext. It returns io.EOF only after the
// last chunk has been authenticated.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		r.err = r.next()
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}

// next reads and decrypts one chunk.
func (r *Reader) next() error {
	have := 0
	if r.ahead {
		r.in[0] = r.in[r.chunk]
		have = 1
	}
	n, err := io.ReadFull(r.src, r.in[have:])
	n += have
	var last bool
	switch {
	case err == nil:
		r.ahead = true
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		last, r.ahead = true, false
	default:
		return fmt.Errorf("stream: %w", err)
	}
	chunk := r.in[:min(n, r.chunk)]
	if last && (len(chunk) < TagSize || len(chunk) == TagSize && r.counter > 0) {
		return fmt.Errorf("%w: chunk %d truncated", ErrDecrypt, r.counter)
	}
	if r.counter == math.MaxUint64 {
		return ErrCounter
	}
	plain, err := r.aead.Open(chunk[:0], nonce(r.counter, last), chunk, nil)
	if err != nil {
		return fmt.Errorf("%w: chunk %d", ErrDecrypt, r.counter)
	}
	r.counter++
	r.plain = plain
	r.done = last
	return nil
}
