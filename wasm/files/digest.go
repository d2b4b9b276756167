package files

import (
	"crypto/sha256"
	"io"

	"github.com/wisp-chat/wisp/wasm/internal/webcrypto"
)

// PieceSize is the size of the plaintext pieces of the file digest.
const PieceSize = 4 << 20

// maxPending bounds the pieces being hashed at once (in the browser,
// by WebCrypto on another thread), so the copies they hold stay bounded.
const maxPending = 3

// digester computes the digest of a file (see Digest) from its plaintext,
// written in order. Each full piece is handed to webcrypto.Start, which in
// the browser hashes it on another thread while the caller goes on.
type digester struct {
	buf     []byte
	sums    []byte                     // the pieces' digests so far, in order
	pending []func() ([32]byte, error) // pieces being hashed, in order
	err     error
}

func newDigester() *digester { return &digester{} }

// Write adds plaintext. It fails only when hashing a piece failed.
func (d *digester) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && d.err == nil {
		if d.buf == nil {
			d.buf = make([]byte, 0, PieceSize)
		}
		k := copy(d.buf[len(d.buf):PieceSize], p)
		d.buf, p = d.buf[:len(d.buf)+k], p[k:]
		if len(d.buf) == PieceSize {
			d.flush()
		}
	}
	return n, d.err
}

// flush hashes the buffered piece.
func (d *digester) flush() {
	d.pending = append(d.pending, webcrypto.Start(d.buf))
	d.buf = d.buf[:0]
	for len(d.pending) > maxPending && d.err == nil {
		d.collect()
	}
}

// collect waits for the oldest piece being hashed.
func (d *digester) collect() {
	sum, err := d.pending[0]()
	d.pending = d.pending[1:]
	if err != nil {
		d.err = err
		return
	}
	d.sums = append(d.sums, sum[:]...)
}

// Sum returns the digest of everything written.
func (d *digester) Sum() ([DigestSize]byte, error) {
	if len(d.buf) > 0 {
		d.flush()
	}
	for len(d.pending) > 0 && d.err == nil {
		d.collect()
	}
	if d.err != nil {
		return [DigestSize]byte{}, d.err
	}
	return sha256.Sum256(d.sums), nil
}

// Digest returns the digest a Description carries for the plaintext r
// holds: SHA-256 of the concatenated SHA-256 digests of its PieceSize
// pieces (the last one shorter). An empty file has no pieces: its digest
// is SHA-256 of nothing. The pieces are hashed independently so that the
// browser can hash them with WebCrypto, off the core's only thread.
func Digest(r io.Reader) ([DigestSize]byte, error) {
	d := newDigester()
	if _, err := io.Copy(d, r); err != nil {
		return [DigestSize]byte{}, err
	}
	return d.Sum()
}
