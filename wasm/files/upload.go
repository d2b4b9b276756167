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

// Versions of an encoded Upload: uploadVersion for one recipient (the
// original format, still written for one recipient), uploadVersionMany
// for 2 to MaxRecipients.
const (
	uploadVersion     = 1
	uploadVersionMany = 2
)

// UploadedChunkSize is one UploadedChunk for one recipient in an encoded
// Upload; each more recipient adds RecipientChunkSize.
const UploadedChunkSize = 2 + 1 + SenderChunkSize + RecipientChunkSize + 32

// uploadedChunkSize is one UploadedChunk for r recipients.
func uploadedChunkSize(r int) int {
	return UploadedChunkSize + (r-1)*RecipientChunkSize
}

// Upload is the state of a resumable Send or SendMany
// (SendOptions.Upload): the file's key and size, the relay, the recipient
// count, and every chunk whose upload has started. It holds keys: keep it
// encrypted (wasm/store).
type Upload struct {
	Size  int64
	Key   stream.Key
	Relay wire.Address
	// Recipients is the recipient count every chunk is created for,
	// 1..MaxRecipients; 0 is read as 1. A resumed Send keeps it.
	Recipients int
	Chunks     []UploadedChunk // sorted by Index
}

// UploadedChunk is one chunk of an Upload whose upload has started: it is
// recorded, with its fingerprint, before any byte of it is sent.
type UploadedChunk struct {
	Index int
	// Done is set once the relay confirmed the upload (FPUT answered
	// OK); until then the chunk may or may not be on the relay.
	Done   bool
	Sender client.SenderChunk
	// Recipients holds one record per recipient, in recipient order
	// (Upload.Recipients of them): recipient k's goes in its
	// Description.
	Recipients []client.RecipientChunk
	// Fingerprint is the SHA-256 of the chunk's ciphertext (without the
	// last chunk's padding). The encryption is deterministic for a key:
	// a resumed Send recomputes it and refuses to send other bytes under
	// the same key and chunk index (which would reuse a STREAM nonce).
	Fingerprint [32]byte
}

// NewUpload returns the state of a new resumable upload of size bytes to
// relay for one recipient, with a fresh random key. Persist it
// (MarshalBinary) before the first Send, so that a Send interrupted by a
// reload can resume.
func NewUpload(relay wire.Address, size int64) (*Upload, error) {
	return NewUploadMany(relay, size, 1)
}

// NewUploadMany is NewUpload for a file SendMany uploads once for
// recipients recipients (1..MaxRecipients, else ErrRecipients).
func NewUploadMany(relay wire.Address, size int64, recipients int) (*Upload, error) {
	if err := checkRecipients(recipients); err != nil {
		return nil, err
	}
	if size < 0 || size > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	key, err := stream.NewKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	u := &Upload{Size: size, Key: key, Relay: relay, Recipients: recipients}
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

// recipients is the recipient count of the upload (0 is read as 1).
func (u *Upload) recipients() int {
	return max(u.Recipients, 1)
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
	fmt.Fprintf(f, "files.Upload{%d bytes, %d recipients, %d chunks started, %d bytes on the relay}", u.Size, u.recipients(), len(u.Chunks), done)
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

// MarshalBinary encodes the upload. For one recipient (the original
// format, wasm/files SPEC.md §7.1):
//
//	version (1) = 1 ‖ size (8) ‖ stream key (32) ‖ address length (1) ‖
//	address ‖ count (2) ‖ count × (index (2) ‖ done (1: 0 or 1) ‖
//	client.SenderChunk (57) ‖ client.RecipientChunk (89) ‖
//	fingerprint (32))
//
// For r = 2..MaxRecipients recipients, version 2 with r after the
// address and r recipient records per chunk, in recipient order:
//
//	version (1) = 2 ‖ size (8) ‖ stream key (32) ‖ address length (1) ‖
//	address ‖ r (1) ‖ count (2) ‖ count × (index (2) ‖ done (1) ‖
//	client.SenderChunk (57) ‖ r × client.RecipientChunk (89) ‖
//	fingerprint (32))
//
// The chunks are in increasing index order.
func (u *Upload) MarshalBinary() ([]byte, error) {
	if err := u.validate(); err != nil {
		return nil, err
	}
	r := u.recipients()
	addr := u.Relay.String()
	b := make([]byte, 0, 1+8+stream.KeySize+1+len(addr)+1+2+len(u.Chunks)*uploadedChunkSize(r))
	if r == 1 {
		b = append(b, uploadVersion)
	} else {
		b = append(b, uploadVersionMany)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(u.Size))
	b = append(b, u.Key.Bytes()...)
	b = append(b, byte(len(addr)))
	b = append(b, addr...)
	if r > 1 {
		b = append(b, byte(r))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(u.Chunks)))
	for _, c := range u.Chunks {
		b = binary.BigEndian.AppendUint16(b, uint16(c.Index))
		b = append(b, boolByte(c.Done))
		e, err := c.Sender.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%w: chunk %d: %w", ErrInvalidDescription, c.Index, err)
		}
		b = append(b, e...)
		for k, rc := range c.Recipients {
			e, err := rc.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("%w: chunk %d, recipient %d: %w", ErrInvalidDescription, c.Index, k, err)
			}
			b = append(b, e...)
		}
		b = append(b, c.Fingerprint[:]...)
	}
	return b, nil
}

// UnmarshalUpload decodes Upload.MarshalBinary, either version; errors
// wrap ErrInvalidDescription.
func UnmarshalUpload(b []byte) (*Upload, error) {
	rd := &decoder{b: b}
	v := rd.u8()
	if v != uploadVersion && v != uploadVersionMany {
		return nil, fmt.Errorf("%w: upload version %d", ErrInvalidDescription, v)
	}
	u := &Upload{Size: int64(rd.u64()), Recipients: 1}
	key, err := stream.KeyFromBytes(rd.take(stream.KeySize))
	if err != nil && !rd.bad {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDescription, err)
	}
	u.Key = key
	if u.Relay, err = rd.address(); err != nil {
		return nil, err
	}
	if v == uploadVersionMany {
		// One encoding per state: one recipient is version 1.
		u.Recipients = int(rd.u8())
		if !rd.bad && (u.Recipients < 2 || u.Recipients > MaxRecipients) {
			return nil, fmt.Errorf("%w: upload for %d recipients", ErrInvalidDescription, u.Recipients)
		}
	}
	n := rd.u16()
	if rd.bad || len(rd.b) != n*uploadedChunkSize(u.Recipients) {
		return nil, fmt.Errorf("%w: upload truncated or oversized", ErrInvalidDescription)
	}
	for range n {
		c := UploadedChunk{Index: rd.u16()}
		switch rd.u8() {
		case 0:
		case 1:
			c.Done = true
		default:
			return nil, fmt.Errorf("%w: chunk %d: bad done flag", ErrInvalidDescription, c.Index)
		}
		if c.Sender, err = client.UnmarshalSenderChunk(rd.take(SenderChunkSize)); err != nil {
			return nil, fmt.Errorf("%w: chunk %d: %w", ErrInvalidDescription, c.Index, err)
		}
		c.Recipients = make([]client.RecipientChunk, u.Recipients)
		for k := range c.Recipients {
			if c.Recipients[k], err = client.UnmarshalRecipientChunk(rd.take(RecipientChunkSize)); err != nil {
				return nil, fmt.Errorf("%w: chunk %d, recipient %d: %w", ErrInvalidDescription, c.Index, k, err)
			}
		}
		copy(c.Fingerprint[:], rd.take(32))
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
	if u.Recipients < 0 || u.Recipients > MaxRecipients {
		return fmt.Errorf("%w: upload for %d recipients", ErrInvalidDescription, u.Recipients)
	}
	r := u.recipients()
	class, _ := ClassForSize(u.Size)
	n := chunkCount(u.Size, class)
	for i, c := range u.Chunks {
		switch {
		case c.Index < 0 || c.Index >= n || (i > 0 && c.Index <= u.Chunks[i-1].Index):
			return fmt.Errorf("%w: uploaded chunk index %d", ErrInvalidDescription, c.Index)
		case len(c.Recipients) != r:
			return fmt.Errorf("%w: chunk %d has %d recipient records, want %d", ErrInvalidDescription, c.Index, len(c.Recipients), r)
		case c.Sender.Class != class:
			return fmt.Errorf("%w: chunk %d is not of class %s", ErrInvalidDescription, c.Index, class)
		}
		for _, rc := range c.Recipients {
			if rc.Class != class {
				return fmt.Errorf("%w: chunk %d is not of class %s", ErrInvalidDescription, c.Index, class)
			}
		}
	}
	return nil
}
