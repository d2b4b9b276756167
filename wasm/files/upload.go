package files

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/wisp-chat/wisp/crypto/stream"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// ErrNotSameFile is returned by a resumed Send when the file it is given
// does not produce the bytes already uploaded: the user picked another
// file, or the file changed. Nothing more is uploaded.
var ErrNotSameFile = errors.New("files: not the same file as the interrupted upload")

// uploadVersion starts an encoded Upload.
const uploadVersion = 1

// UploadedChunkSize is one UploadedChunk in an encoded Upload.
const UploadedChunkSize = 2 + 1 + SenderChunkSize + RecipientChunkSize + 32

// Upload is the state of a resumable Send (SendOptions.Upload): the file's
// key and size, the relay, and every chunk whose upload has started. It
// holds keys: keep it encrypted (wasm/store).
type Upload struct {
	Size   int64
	Key    stream.Key
	Relay  wire.Address
	Chunks []UploadedChunk // sorted by Index
}

// UploadedChunk is one chunk of an Upload whose upload has started: it is
// recorded, with its fingerprint, before any byte of it is sent.
type UploadedChunk struct {
	Index int
	// Done is set once the relay confirmed the upload (FPUT answered
	// OK); until then the chunk may or may not be on the relay.
	Done      bool
	Sender    client.SenderChunk
	Recipient client.RecipientChunk
	// Fingerprint is the SHA-256 of the chunk's ciphertext (without the
	// last chunk's padding). The encryption is deterministic for a key:
	// a resumed Send recomputes it and refuses to send other bytes under
	// the same key and chunk index (which would reuse a STREAM nonce).
	Fingerprint [32]byte
}

// NewUpload returns the state of a new resumable upload of size bytes to
// relay, with a fresh random key. Persist it (MarshalBinary) before the
// first Send, so that a Send interrupted by a reload can resume.
func NewUpload(relay wire.Address, size int64) (*Upload, error) {
	if size < 0 || size > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	key, err := stream.NewKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	u := &Upload{Size: size, Key: key, Relay: relay}
	if len(relay.String()) > maxAddressSize {
		return nil, fmt.Errorf("%w: relay address too long", ErrInvalidDescription)
	}
	return u, nil
}

// Bytes returns how many chunk bytes the relay confirmed (what a resumed
// Send need not upload again) and the total.
func (u *Upload) Bytes() (done, total int64) {
	class, err := ClassForSize(u.Size)
	if err != nil {
		return 0, 0
	}
	cs := int64(class.Size())
	for _, c := range u.Chunks {
		if c.Done {
			done += cs
		}
	}
	return done, int64(chunkCount(u.Size, class)) * cs
}

// chunk returns the uploaded chunk i, if it is on the relay.
func (u *Upload) chunk(i int) (UploadedChunk, bool) {
	k := sort.Search(len(u.Chunks), func(j int) bool { return u.Chunks[j].Index >= i })
	if k < len(u.Chunks) && u.Chunks[k].Index == i {
		return u.Chunks[k], true
	}
	return UploadedChunk{}, false
}

// clone returns a copy that later changes to u do not affect.
func (u *Upload) clone() *Upload {
	c := *u
	c.Chunks = append([]UploadedChunk(nil), u.Chunks...)
	return &c
}

// put records a chunk, replacing any earlier record of its index.
func (u *Upload) put(c UploadedChunk) {
	k := sort.Search(len(u.Chunks), func(j int) bool { return u.Chunks[j].Index >= c.Index })
	if k < len(u.Chunks) && u.Chunks[k].Index == c.Index {
		u.Chunks[k] = c
		return
	}
	u.Chunks = append(u.Chunks, UploadedChunk{})
	copy(u.Chunks[k+1:], u.Chunks[k:])
	u.Chunks[k] = c
}

// Format prints the size and the chunk counts, never keys or IDs.
func (u *Upload) Format(f fmt.State, _ rune) {
	done, _ := u.Bytes()
	fmt.Fprintf(f, "files.Upload{%d bytes, %d chunks started, %d bytes on the relay}", u.Size, len(u.Chunks), done)
}

// SenderState returns the sender's records of the chunks started, for
// DeleteSent when an upload is abandoned.
func (u *Upload) SenderState() *SenderState {
	s := &SenderState{Relay: u.Relay}
	for _, c := range u.Chunks {
		s.Chunks = append(s.Chunks, c.Sender)
	}
	return s
}

// MarshalBinary encodes the upload as version (1) = 1 ‖ size (8) ‖
// stream key (32) ‖ address length (1) ‖ address ‖ count (2) ‖ count ×
// (index (2) ‖ done (1: 0 or 1) ‖ client.SenderChunk (57) ‖
// client.RecipientChunk (89) ‖ fingerprint (32)), the chunks in
// increasing index order.
func (u *Upload) MarshalBinary() ([]byte, error) {
	if err := u.validate(); err != nil {
		return nil, err
	}
	addr := u.Relay.String()
	b := make([]byte, 0, 1+8+stream.KeySize+1+len(addr)+2+len(u.Chunks)*UploadedChunkSize)
	b = append(b, uploadVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(u.Size))
	b = append(b, u.Key.Bytes()...)
	b = append(b, byte(len(addr)))
	b = append(b, addr...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(u.Chunks)))
	for _, c := range u.Chunks {
		b = binary.BigEndian.AppendUint16(b, uint16(c.Index))
		b = append(b, boolByte(c.Done))
		for _, m := range []interface{ MarshalBinary() ([]byte, error) }{c.Sender, c.Recipient} {
			e, err := m.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("%w: chunk %d: %w", ErrInvalidDescription, c.Index, err)
			}
			b = append(b, e...)
		}
		b = append(b, c.Fingerprint[:]...)
	}
	return b, nil
}

// UnmarshalUpload decodes Upload.MarshalBinary; errors wrap
// ErrInvalidDescription.
func UnmarshalUpload(b []byte) (*Upload, error) {
	r := &decoder{b: b}
	if v := r.u8(); v != uploadVersion {
		return nil, fmt.Errorf("%w: upload version %d", ErrInvalidDescription, v)
	}
	u := &Upload{Size: int64(r.u64())}
	key, err := stream.KeyFromBytes(r.take(stream.KeySize))
	if err != nil && !r.bad {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDescription, err)
	}
	u.Key = key
	if u.Relay, err = r.address(); err != nil {
		return nil, err
	}
	n := r.u16()
	if r.bad || len(r.b) != n*UploadedChunkSize {
		return nil, fmt.Errorf("%w: upload truncated or oversized", ErrInvalidDescription)
	}
	for range n {
		c := UploadedChunk{Index: r.u16()}
		switch r.u8() {
		case 0:
		case 1:
			c.Done = true
		default:
			return nil, fmt.Errorf("%w: chunk %d: bad done flag", ErrInvalidDescription, c.Index)
		}
		if c.Sender, err = client.UnmarshalSenderChunk(r.take(SenderChunkSize)); err == nil {
			c.Recipient, err = client.UnmarshalRecipientChunk(r.take(RecipientChunkSize))
		}
		if err != nil {
			return nil, fmt.Errorf("%w: chunk %d: %w", ErrInvalidDescription, c.Index, err)
		}
		copy(c.Fingerprint[:], r.take(32))
		u.Chunks = append(u.Chunks, c)
	}
	if err := u.validate(); err != nil {
		return nil, err
	}
	return u, nil
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// validate checks what MarshalBinary and a resumed Send rely on.
func (u *Upload) validate() error {
	if u.Size < 0 || u.Size > MaxFileSize {
		return fmt.Errorf("%w: upload of %d bytes", ErrInvalidDescription, u.Size)
	}
	if len(u.Relay.String()) > maxAddressSize {
		return fmt.Errorf("%w: relay address too long", ErrInvalidDescription)
	}
	class, _ := ClassForSize(u.Size)
	n := chunkCount(u.Size, class)
	for i, c := range u.Chunks {
		switch {
		case c.Index < 0 || c.Index >= n || (i > 0 && c.Index <= u.Chunks[i-1].Index):
			return fmt.Errorf("%w: uploaded chunk index %d", ErrInvalidDescription, c.Index)
		case c.Sender.Class != class || c.Recipient.Class != class:
			return fmt.Errorf("%w: chunk %d is not of class %s", ErrInvalidDescription, c.Index, class)
		}
	}
	return nil
}
