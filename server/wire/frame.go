package wire

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// FilesPath is the URL path of the relay's file chunk endpoint. It runs
// the same handshake as EndpointPath; after it, every WebSocket message is
// one frame (SPEC.md, "File chunks").
const FilesPath = "/wisp/files"

// FilesURL returns the URL of the relay's file endpoint, with the same
// scheme rule as WebSocketURL.
func (a Address) FilesURL() string {
	u := a.WebSocketURL()
	return u[:len(u)-len(EndpointPath)] + FilesPath
}

// ChunkClass is one of the fixed chunk sizes of the file store. The zero
// class is a control frame, which carries no chunk.
type ChunkClass uint8

// Chunk classes. A chunk is exactly Size() bytes; clients pad the last
// chunk of a file.
const (
	ClassControl ChunkClass = iota
	Class64K
	Class256K
	Class1M
	Class4M
)

// MaxChunkSize is the size of the largest chunk class.
const MaxChunkSize = 4 << 20

// MaxFrameSize is the size of the largest frame: a 4 MiB chunk frame.
const MaxFrameSize = MaxChunkSize + BlockSize

// frameLenSize is the length prefix of the transmission in a frame.
const frameLenSize = 4

// Classes lists the chunk classes, smallest first.
func Classes() []ChunkClass { return []ChunkClass{Class64K, Class256K, Class1M, Class4M} }

// Size is the chunk size of the class in bytes (0 for ClassControl and
// for an unknown class).
func (c ChunkClass) Size() int {
	switch c {
	case Class64K:
		return 64 << 10
	case Class256K:
		return 256 << 10
	case Class1M:
		return 1 << 20
	case Class4M:
		return 4 << 20
	}
	return 0
}

// Valid reports whether c is a chunk class (not control, not unknown).
func (c ChunkClass) Valid() bool { return c.Size() > 0 }

// String names the class.
func (c ChunkClass) String() string {
	switch c {
	case ClassControl:
		return "control"
	case Class64K:
		return "64KiB"
	case Class256K:
		return "256KiB"
	case Class1M:
		return "1MiB"
	case Class4M:
		return "4MiB"
	}
	return fmt.Sprintf("ChunkClass(%d)", uint8(c))
}

// FrameSize is the size of a frame of the class on the wire: the chunk
// size plus one block (BlockSize alone for ClassControl), so a frame
// reveals its class and nothing else. It is 0 for an unknown class.
func (c ChunkClass) FrameSize() int {
	if c != ClassControl && !c.Valid() {
		return 0
	}
	return c.Size() + BlockSize
}

// ClassFor returns the smallest chunk class that holds n bytes.
func ClassFor(n int) (ChunkClass, error) {
	for _, c := range Classes() {
		if n <= c.Size() {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%w: %d bytes is more than the largest chunk", ErrTooLarge, n)
}

// FrameClass returns the class of a frame of n bytes; ok is false when n
// is not a frame size.
func FrameClass(n int) (c ChunkClass, ok bool) {
	for _, c := range append([]ChunkClass{ClassControl}, Classes()...) {
		if n == c.FrameSize() {
			return c, true
		}
	}
	return 0, false
}

// SealFrame encodes t (signed by key, or unsigned when key is nil) into
// one frame of the class and encrypts it with the next key of the send
// chain. Like Seal, it must not be called concurrently with itself.
func (s *Session) SealFrame(class ChunkClass, t *FileTransmission, key ed25519.PrivateKey) ([]byte, error) {
	size := class.FrameSize()
	if size == 0 {
		return nil, fmt.Errorf("%w: chunk class %d", ErrCommand, class)
	}
	payloadSize := size - chacha20poly1305.Overhead
	buf := make([]byte, frameLenSize, size)
	sigStart := len(buf)
	buf, err := t.appendTo(buf, key != nil)
	if err != nil {
		return nil, err
	}
	if len(buf) > payloadSize {
		return nil, fmt.Errorf("%w: transmission does not fit a %s frame", ErrTooLarge, class)
	}
	if key != nil {
		if err := signFileInto(buf[sigStart:], s.ID, key, s.SHA256); err != nil {
			return nil, err
		}
	}
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-frameLenSize))
	return s.sealFramePayload(buf[:payloadSize]) // the capacity was zeroed by make
}

// SealRawFrame seals an already encoded transmission (Marshal or Sign)
// into one frame of the class.
func (s *Session) SealRawFrame(class ChunkClass, raw []byte) ([]byte, error) {
	size := class.FrameSize()
	if size == 0 {
		return nil, fmt.Errorf("%w: chunk class %d", ErrCommand, class)
	}
	payloadSize := size - chacha20poly1305.Overhead
	if len(raw) == 0 || frameLenSize+len(raw) > payloadSize {
		return nil, fmt.Errorf("%w: %d-byte transmission in a %s frame", ErrTooLarge, len(raw), class)
	}
	buf := make([]byte, payloadSize, size)
	binary.BigEndian.PutUint32(buf, uint32(len(raw)))
	copy(buf[frameLenSize:], raw)
	return s.sealFramePayload(buf)
}

func (s *Session) sealFramePayload(buf []byte) ([]byte, error) {
	aead, err := s.send.aead()
	if err != nil {
		return nil, err
	}
	return aead.Seal(buf[:0], zeroNonce[:], buf, nil), nil
}

// OpenFrame decrypts one frame in place and returns its transmission
// (aliasing frame) and class. Any error means the connection must be
// closed: ErrBlockSize for a size that is no frame size, ErrDecrypt when
// the chains are out of step, ErrBlock for a bad length or padding.
func (s *Session) OpenFrame(frame []byte) ([]byte, ChunkClass, error) {
	class, ok := FrameClass(len(frame))
	if !ok {
		return nil, 0, fmt.Errorf("%w: frame of %d bytes", ErrBlockSize, len(frame))
	}
	aead, err := s.recv.aead()
	if err != nil {
		return nil, 0, err
	}
	p, err := aead.Open(frame[:0], zeroNonce[:], frame, nil)
	if err != nil {
		return nil, 0, ErrDecrypt
	}
	n := int(binary.BigEndian.Uint32(p))
	if n == 0 || n > len(p)-frameLenSize {
		return nil, 0, fmt.Errorf("%w: transmission length %d", ErrBlock, n)
	}
	if !allZero(p[frameLenSize+n:]) {
		return nil, 0, fmt.Errorf("%w: non-zero padding", ErrBlock)
	}
	return p[frameLenSize : frameLenSize+n], class, nil
}

// ReadFrame reads one WebSocket message of at most MaxFrameSize bytes.
// The buffer grows from one frame size to the next, so a control frame
// costs one block and a chunk frame little more than its size. A message
// whose size is not a frame size is ErrBlockSize; set the reader's read
// limit to MaxFrameSize.
func ReadFrame[T ~int](ctx context.Context, r BlockReader[T]) (typ T, frame []byte, err error) {
	typ, mr, err := r.Reader(ctx)
	if err != nil {
		return typ, nil, err
	}
	sizes := append([]ChunkClass{ClassControl}, Classes()...)
	buf := make([]byte, 0, BlockSize)
	for i := 0; ; {
		n, err := io.ReadFull(mr, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return typ, nil, err
		}
		// The buffer is full: the message is at least this frame size.
		i++
		if i == len(sizes) {
			var one [1]byte
			if m, err := mr.Read(one[:]); m > 0 {
				return typ, nil, fmt.Errorf("%w: longer than %d bytes", ErrBlockSize, MaxFrameSize)
			} else if err != nil && !errors.Is(err, io.EOF) {
				return typ, nil, err
			}
			break
		}
		next := make([]byte, len(buf), sizes[i].FrameSize())
		copy(next, buf)
		buf = next
	}
	if _, ok := FrameClass(len(buf)); !ok {
		return typ, nil, fmt.Errorf("%w: message of %d bytes", ErrBlockSize, len(buf))
	}
	return typ, buf, nil
}
