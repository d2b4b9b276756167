package files

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/wisp-chat/wisp/crypto/stream"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// Format bytes: the first byte of every encoding this package writes.
const (
	// FormatFile starts the description of a file.
	FormatFile = 1
	// FormatRedirect starts the description of a file that holds the
	// encoded description of the real file (see Redirect).
	FormatRedirect = 2
	// senderStateVersion starts a SenderState.
	senderStateVersion = 1
)

// MaxFileSize is the largest file Send accepts (1 GiB).
const MaxFileSize = 1 << 30

// Sizes of the encoded forms (see Description.MarshalBinary).
const (
	// DigestSize is the size of the plaintext's Digest.
	DigestSize = 32
	// RecipientChunkSize is one client.RecipientChunk in a description.
	RecipientChunkSize = 1 + wire.IDSize + 32 + 32
	// SenderChunkSize is one client.SenderChunk in a SenderState.
	SenderChunkSize = 1 + wire.IDSize + 32
	// maxAddressSize bounds the relay address text.
	maxAddressSize = 255
	// descriptionHeaderSize is everything but the address and the chunks.
	descriptionHeaderSize = 1 + 8 + 8 + 1 + DigestSize + stream.KeySize + 1 + 2
	// MaxChunks is the chunk count of a MaxFileSize file (4 MiB chunks).
	MaxChunks = (MaxFileSize + MaxFileSize/stream.ChunkSize*stream.TagSize + wire.MaxChunkSize - 1) / wire.MaxChunkSize
	// MaxDescriptionSize is the largest encoded description: a 1 GiB
	// file with the longest relay address (23,213 bytes).
	MaxDescriptionSize = descriptionHeaderSize + maxAddressSize + MaxChunks*RecipientChunkSize
)

// Errors callers branch on.
var (
	// ErrInvalidDescription wraps every reason a description or sender
	// state does not decode or is inconsistent.
	ErrInvalidDescription = errors.New("files: invalid file description")
	// ErrTooLarge is returned by Send for a file over MaxFileSize, before
	// anything is uploaded.
	ErrTooLarge = errors.New("files: file larger than 1 GiB")
)

// Description is what a recipient needs to download, verify and decrypt
// one file. The sender sends it (MarshalBinary) inside the end-to-end
// channel; it holds keys, so it is as secret as a message.
type Description struct {
	Size   int64                   // plaintext bytes
	Class  wire.ChunkClass         // class of every chunk
	Digest [DigestSize]byte        // Digest of the plaintext
	Key    stream.Key              // crypto/stream key of the file
	Relay  wire.Address            // the relay holding the chunks
	Chunks []client.RecipientChunk // in file order
	// Redirect marks a description whose file is the encoded
	// description of the real file (Redirect, Follow).
	Redirect bool
}

// CiphertextSize is the exact size of the encrypted file (before padding
// to whole chunks).
func (d *Description) CiphertextSize() int64 { return stream.CiphertextSize(d.Size) }

// ClassForSize returns the chunk class Send uses for a file of size
// plaintext bytes: the smallest class whose chunk holds
// min(ciphertext size, 4 MiB). Files whose ciphertext fits in 64 KiB,
// 256 KiB or 1 MiB take one chunk of that class; larger files take 4 MiB
// chunks, the last one padded.
func ClassForSize(size int64) (wire.ChunkClass, error) {
	if size < 0 || size > MaxFileSize {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	return wire.ClassFor(int(min(stream.CiphertextSize(size), wire.MaxChunkSize)))
}

// chunkCount is the number of relay chunks of a file.
func chunkCount(size int64, class wire.ChunkClass) int {
	cs := int64(class.Size())
	return int((stream.CiphertextSize(size) + cs - 1) / cs)
}

// MarshalBinary encodes the description:
//
//	format (1) = FormatFile, or FormatRedirect when Redirect is set
//	size (8, big-endian, ≤ MaxFileSize)
//	ciphertext size (8) = stream.CiphertextSize(size)
//	class (1) = ClassForSize(size)
//	Digest of the plaintext (32): SHA-256 of the pieces' SHA-256 (see Digest)
//	stream key (32)
//	address length (1, ≥ 1) ‖ relay address, canonical wisp:// text form
//	chunk count (2) = ⌈ciphertext size / class size⌉
//	chunk count × client.RecipientChunk (89 each, of the same class)
//
// Nothing follows. A 1 GiB file has 257 chunks and a description of at
// most MaxDescriptionSize bytes. A redirect's file is an encoded
// description (Size ≤ MaxDescriptionSize), so a redirect has one 64 KiB
// chunk and is at most 85 + 255 + 89 = 429 bytes.
func (d *Description) MarshalBinary() ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	addr := d.Relay.String()
	b := make([]byte, 0, descriptionHeaderSize+len(addr)+len(d.Chunks)*RecipientChunkSize)
	b = append(b, d.format())
	b = binary.BigEndian.AppendUint64(b, uint64(d.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(d.CiphertextSize()))
	b = append(b, byte(d.Class))
	b = append(b, d.Digest[:]...)
	b = append(b, d.Key.Bytes()...)
	return appendTail(b, addr, d.Chunks)
}

// appendTail appends what descriptions and sender states end with:
// address length (1) ‖ address ‖ chunk count (2) ‖ the chunks.
func appendTail[C encoding.BinaryMarshaler](b []byte, addr string, chunks []C) ([]byte, error) {
	b = append(b, byte(len(addr)))
	b = append(b, addr...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(chunks)))
	for _, c := range chunks {
		cb, err := c.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidDescription, err)
		}
		b = append(b, cb...)
	}
	return b, nil
}

// Format prints a summary without keys or chunk IDs, whatever the verb,
// so a description in a log or an error message leaks nothing.
func (d Description) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "files.Description{%d bytes, %d × %s, redirect %t}", d.Size, len(d.Chunks), d.Class, d.Redirect)
}

// Format prints a summary without keys or chunk IDs, whatever the verb.
func (s SenderState) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "files.SenderState{%d chunks}", len(s.Chunks))
}

func (d *Description) format() byte {
	if d.Redirect {
		return FormatRedirect
	}
	return FormatFile
}

// validate checks the invariants every description must hold.
func (d *Description) validate() error {
	if d.Redirect && (d.Size < 0 || d.Size > MaxDescriptionSize) {
		return fmt.Errorf("%w: redirect to a description of %d bytes", ErrInvalidDescription, d.Size)
	}
	class, err := ClassForSize(d.Size)
	if err != nil {
		return fmt.Errorf("%w: size %d", ErrInvalidDescription, d.Size)
	}
	if d.Class != class {
		return fmt.Errorf("%w: class %s for %d bytes, want %s", ErrInvalidDescription, d.Class, d.Size, class)
	}
	if addr := d.Relay.String(); len(addr) > maxAddressSize {
		return fmt.Errorf("%w: relay address of %d bytes", ErrInvalidDescription, len(addr))
	} else if a, err := wire.ParseAddress(addr); err != nil || a.String() != addr {
		return fmt.Errorf("%w: relay address", ErrInvalidDescription)
	}
	if n := chunkCount(d.Size, class); len(d.Chunks) != n {
		return fmt.Errorf("%w: %d chunks, want %d", ErrInvalidDescription, len(d.Chunks), n)
	}
	for i, c := range d.Chunks {
		if c.Class != class {
			return fmt.Errorf("%w: chunk %d of class %s", ErrInvalidDescription, i, c.Class)
		}
	}
	return nil
}

// decoder reads fixed fields and remembers the first shortage.
type decoder struct {
	b   []byte
	bad bool
}

func (r *decoder) take(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// address reads address length (1, ≥ 1) ‖ address and requires the
// canonical text form, so an encoding has one meaning.
func (r *decoder) address() (wire.Address, error) {
	n := int(r.u8())
	s := string(r.take(n))
	if r.bad || n == 0 {
		return wire.Address{}, fmt.Errorf("%w: truncated", ErrInvalidDescription)
	}
	a, err := wire.ParseAddress(s)
	if err != nil || a.String() != s {
		return wire.Address{}, fmt.Errorf("%w: relay address is not canonical", ErrInvalidDescription)
	}
	return a, nil
}

func (r *decoder) u8() uint8   { return r.take(1)[0] }
func (r *decoder) u16() int    { return int(binary.BigEndian.Uint16(r.take(2))) }
func (r *decoder) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }

// UnmarshalDescription decodes Description.MarshalBinary. Every malformed,
// truncated, oversized or inconsistent input is an error wrapping
// ErrInvalidDescription.
func UnmarshalDescription(b []byte) (*Description, error) {
	if len(b) > MaxDescriptionSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidDescription, len(b), MaxDescriptionSize)
	}
	r := &decoder{b: b}
	format := r.u8()
	if format != FormatFile && format != FormatRedirect {
		return nil, fmt.Errorf("%w: format %d", ErrInvalidDescription, format)
	}
	size, ctSize := r.u64(), r.u64()
	if size > MaxFileSize || r.bad {
		return nil, fmt.Errorf("%w: size", ErrInvalidDescription)
	}
	d := &Description{Size: int64(size), Class: wire.ChunkClass(r.u8()), Redirect: format == FormatRedirect}
	if ctSize != uint64(d.CiphertextSize()) {
		return nil, fmt.Errorf("%w: ciphertext size %d for %d bytes", ErrInvalidDescription, ctSize, size)
	}
	copy(d.Digest[:], r.take(DigestSize))
	key, err := stream.KeyFromBytes(r.take(stream.KeySize))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDescription, err)
	}
	d.Key = key
	if d.Relay, err = r.address(); err != nil {
		return nil, err
	}
	n := r.u16()
	if r.bad || len(r.b) != n*RecipientChunkSize {
		return nil, fmt.Errorf("%w: %d bytes for %d chunks", ErrInvalidDescription, len(r.b), n)
	}
	d.Chunks = make([]client.RecipientChunk, n)
	for i := range d.Chunks {
		if d.Chunks[i], err = client.UnmarshalRecipientChunk(r.take(RecipientChunkSize)); err != nil {
			return nil, fmt.Errorf("%w: chunk %d: %w", ErrInvalidDescription, i, err)
		}
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// SenderState is what the sender keeps to delete a file's chunks from the
// relay later (DeleteSent). Persist it with MarshalBinary; it holds the
// chunks' sender keys, so store it encrypted like any other record.
type SenderState struct {
	Relay  wire.Address
	Chunks []client.SenderChunk
}

// MarshalBinary encodes the state as version (1) = 1 ‖ address length (1) ‖
// address ‖ chunk count (2) ‖ count × client.SenderChunk (57 each).
func (s *SenderState) MarshalBinary() ([]byte, error) {
	addr := s.Relay.String()
	if len(addr) > maxAddressSize || len(s.Chunks) > MaxChunks {
		return nil, fmt.Errorf("%w: sender state too large", ErrInvalidDescription)
	}
	return appendTail([]byte{senderStateVersion}, addr, s.Chunks)
}

// UnmarshalSenderState decodes SenderState.MarshalBinary; errors wrap
// ErrInvalidDescription.
func UnmarshalSenderState(b []byte) (*SenderState, error) {
	r := &decoder{b: b}
	if v := r.u8(); v != senderStateVersion {
		return nil, fmt.Errorf("%w: sender state version %d", ErrInvalidDescription, v)
	}
	relay, err := r.address()
	if err != nil {
		return nil, err
	}
	n := r.u16()
	if r.bad || n > MaxChunks || len(r.b) != n*SenderChunkSize {
		return nil, fmt.Errorf("%w: sender state truncated or oversized", ErrInvalidDescription)
	}
	s := &SenderState{Relay: relay, Chunks: make([]client.SenderChunk, n)}
	for i := range s.Chunks {
		if s.Chunks[i], err = client.UnmarshalSenderChunk(r.take(SenderChunkSize)); err != nil {
			return nil, fmt.Errorf("%w: sender chunk %d: %w", ErrInvalidDescription, i, err)
		}
	}
	return s, nil
}

// DescriptionSize returns the encoded size of the description of a file
// of size bytes on relay, so a caller can tell before sending whether it
// fits in one message.
func DescriptionSize(size int64, relay wire.Address) (int, error) {
	class, err := ClassForSize(size)
	if err != nil {
		return 0, err
	}
	return descriptionHeaderSize + len(relay.String()) + chunkCount(size, class)*RecipientChunkSize, nil
}
