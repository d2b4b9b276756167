package wire

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Block sizes. Every WebSocket message is exactly BlockSize bytes; after the
// handshake it is a sealed payload of BlockPayloadSize bytes.
const (
	BlockSize        = 16384
	BlockPayloadSize = BlockSize - chacha20poly1305.Overhead
	// MaxTransmissions is the most transmissions one block can carry.
	MaxTransmissions = 255
	blockHeaderSize  = 1
	lenPrefixSize    = 2
)

const (
	infoBlockKey = "wisp block key"
	infoChainKey = "wisp chain key"
)

var zeroNonce [chacha20poly1305.NonceSize]byte

// chain is one direction's HKDF chain: every block uses a fresh key, and
// the chain key that produced it is overwritten, so a key captured later
// cannot decrypt earlier blocks.
type chain struct{ key []byte }

func newChain(k []byte) *chain { return &chain{key: append([]byte(nil), k...)} }

func (c *chain) next() ([]byte, error) {
	bk, err := hkdf.Expand(sha256.New, c.key, infoBlockKey, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("wire: block key: %w", err)
	}
	ck, err := hkdf.Expand(sha256.New, c.key, infoChainKey, 32)
	if err != nil {
		return nil, fmt.Errorf("wire: chain key: %w", err)
	}
	clear(c.key)
	c.key = ck
	return bk, nil
}

// Session is an established, encrypted session. Seal and Open each advance
// their own chain: one goroutine may Seal while another Opens, but neither
// may be called concurrently with itself.
type Session struct {
	// ID binds signed commands to this session (SPEC.md, "Signatures").
	ID      [32]byte
	Version uint16
	// SHA256, if set, computes the digest a signed file transmission
	// signs (SealFrame) instead of crypto/sha256; it must return SHA-256
	// of the concatenated parts. The browser client sets one backed by
	// WebCrypto, which hashes a 4 MiB FPUT on a browser thread rather
	// than in wasm. The bytes on the wire do not change.
	SHA256 func(parts ...[]byte) ([32]byte, error)
	send   *chain
	recv   *chain
}

// aead returns the cipher for the chain's next block.
func (c *chain) aead() (cipher.AEAD, error) {
	k, err := c.next()
	if err != nil {
		return nil, err
	}
	defer clear(k)
	aead, err := chacha20poly1305.New(k)
	if err != nil {
		return nil, fmt.Errorf("wire: aead: %w", err)
	}
	return aead, nil
}

// Seal encrypts a BlockPayloadSize payload into one BlockSize block.
func (s *Session) Seal(payload []byte) ([]byte, error) {
	if len(payload) != BlockPayloadSize {
		return nil, fmt.Errorf("%w: payload is %d bytes", ErrBlockSize, len(payload))
	}
	aead, err := s.send.aead()
	if err != nil {
		return nil, err
	}
	return aead.Seal(make([]byte, 0, BlockSize), zeroNonce[:], payload, nil), nil
}

// SealBatch packs encoded transmissions, in order, into as few blocks as
// they fit in and seals them. Every transmission must be at most
// MaxTransmissionSize bytes.
func (s *Session) SealBatch(raws [][]byte) ([][]byte, error) {
	var b BlockBuilder
	var blocks [][]byte
	for i := 0; i < len(raws); {
		b.Reset()
		for i < len(raws) && b.Add(raws[i]) {
			i++
		}
		if b.Len() == 0 {
			return blocks, fmt.Errorf("%w: transmission is %d bytes", ErrTooLarge, len(raws[i]))
		}
		block, err := s.Seal(b.Payload())
		if err != nil {
			return blocks, err
		}
		blocks = append(blocks, block)
	}
	return blocks, nil
}

// Open decrypts one block in place: the payload aliases block. A failure
// means the peer is broken or hostile: the chains are out of step and the
// connection must be closed.
func (s *Session) Open(block []byte) ([]byte, error) {
	if len(block) != BlockSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBlockSize, len(block))
	}
	aead, err := s.recv.aead()
	if err != nil {
		return nil, err
	}
	p, err := aead.Open(block[:0], zeroNonce[:], block, nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return p, nil
}

// BlockBuilder packs transmissions into one block payload. The zero value
// is an empty block.
type BlockBuilder struct {
	buf   [BlockPayloadSize]byte
	n     int
	count int
}

// Fits reports whether a transmission of n bytes still fits.
func (b *BlockBuilder) Fits(n int) bool {
	used := b.n
	if used == 0 {
		used = blockHeaderSize
	}
	return b.count < MaxTransmissions && used+lenPrefixSize+n <= BlockPayloadSize
}

// Add appends a transmission and reports whether it fitted.
func (b *BlockBuilder) Add(t []byte) bool {
	if !b.Fits(len(t)) {
		return false
	}
	if b.n == 0 {
		b.n = blockHeaderSize
	}
	binary.BigEndian.PutUint16(b.buf[b.n:], uint16(len(t)))
	copy(b.buf[b.n+lenPrefixSize:], t)
	b.n += lenPrefixSize + len(t)
	b.count++
	b.buf[0] = byte(b.count)
	return true
}

// Len is the number of transmissions added.
func (b *BlockBuilder) Len() int { return b.count }

// Payload returns the padded payload; it aliases the builder's buffer.
func (b *BlockBuilder) Payload() []byte { return b.buf[:] }

// Reset empties the builder.
func (b *BlockBuilder) Reset() {
	clear(b.buf[:b.n])
	b.n, b.count = 0, 0
}

// MaxTransmissionSize is the largest transmission that fits in a block.
const MaxTransmissionSize = BlockPayloadSize - blockHeaderSize - lenPrefixSize

// SplitBlock returns the transmissions of a decrypted payload. The slices
// alias payload. Any inconsistency (zero count, a length running past the
// end, non-zero padding) is ErrBlock.
func SplitBlock(payload []byte) ([][]byte, error) {
	if len(payload) != BlockPayloadSize {
		return nil, fmt.Errorf("%w: payload is %d bytes", ErrBlockSize, len(payload))
	}
	count := int(payload[0])
	if count == 0 {
		return nil, fmt.Errorf("%w: no transmissions", ErrBlock)
	}
	ts := make([][]byte, 0, count)
	off := blockHeaderSize
	for i := range count {
		if off+lenPrefixSize > len(payload) {
			return nil, fmt.Errorf("%w: transmission %d truncated", ErrBlock, i)
		}
		n := int(binary.BigEndian.Uint16(payload[off:]))
		off += lenPrefixSize
		if n == 0 || off+n > len(payload) {
			return nil, fmt.Errorf("%w: transmission %d has length %d", ErrBlock, i, n)
		}
		ts = append(ts, payload[off:off+n])
		off += n
	}
	if !allZero(payload[off:]) {
		return nil, fmt.Errorf("%w: non-zero padding", ErrBlock)
	}
	return ts, nil
}

// BlockReader is what ReadBlock needs from a WebSocket connection
// (satisfied by *websocket.Conn of github.com/coder/websocket).
type BlockReader[T ~int] interface {
	Reader(ctx context.Context) (T, io.Reader, error)
}

// ReadBlock reads one WebSocket message into a fresh BlockSize buffer
// without growing it step by step. n < BlockSize means the message was
// shorter; a longer message is an error from the reader's read limit (set
// it to BlockSize) or ErrBlockSize.
func ReadBlock[T ~int](ctx context.Context, r BlockReader[T]) (typ T, block []byte, err error) {
	typ, mr, err := r.Reader(ctx)
	if err != nil {
		return typ, nil, err
	}
	buf := make([]byte, BlockSize)
	n, err := io.ReadFull(mr, buf)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return typ, buf[:n], nil
	case err != nil:
		return typ, nil, err
	}
	var one [1]byte
	if m, err := mr.Read(one[:]); m > 0 {
		return typ, nil, fmt.Errorf("%w: longer than %d bytes", ErrBlockSize, BlockSize)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return typ, nil, err
	}
	return typ, buf, nil
}
